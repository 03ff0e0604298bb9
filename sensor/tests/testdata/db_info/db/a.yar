rule yara_one { strings: $a = "abcdef" condition: $a }
