//! What clamscan 1.4.6 refuses in a parsed YARA rule, before the rule is compiled: the constructs its
//! YARA reader does not have (string modifiers, `~` in hex strings), the strings it cannot search for,
//! and the rules it cannot run. Each answer is either "drop this rule" with a reason (clamscan warns and
//! goes on) or "the database is malformed" (clamscan refuses every database), as observed
//! (tests/ORACLE.md §13f). Never compiles, never panics.

use boreal_parser::hex_string::Token;
use boreal_parser::rule::{Rule, VariableDeclarationValue};

/// What clamscan does with a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Load,
    /// Dropped with a warning; the reason is the skip count's key.
    Skip(&'static str),
    /// The whole load fails: `message`, about the string at byte `at` of the rule's text.
    Malformed {
        message: String,
        at: usize,
    },
}

/// clamscan's most strings per rule (its documented limit).
pub(crate) const MAX_STRINGS: usize = 64;

/// `text` is the rule's source, whose condition is read token by token for what clamscan's older YARA
/// grammar lacks.
pub(crate) fn check(rule: &Rule, text: &[u8]) -> Verdict {
    if let Some(reason) = check_condition(text) {
        return Verdict::Skip(reason);
    }
    if rule.variables.is_empty() {
        // clamscan: "yara rule contains no supported strings" (`condition: true`, rule references only).
        return Verdict::Skip("YARA rule without strings");
    }
    if rule.variables.len() > MAX_STRINGS {
        return Verdict::Skip("YARA rule with more than 64 strings");
    }
    for v in &rule.variables {
        let m = &v.modifiers;
        // clamscan's grammar has no xor, base64 or private string modifiers: a syntax error, and the
        // rule is dropped.
        if m.xor.is_some() || m.base64.is_some() || m.private {
            return Verdict::Skip(
                "YARA string modifier clamscan does not read (xor, base64, private)",
            );
        }
        match &v.value {
            VariableDeclarationValue::Bytes(b) => {
                if b.len() < 2 {
                    // clamscan: "string is too short", the rule is dropped.
                    return Verdict::Skip("YARA text string shorter than 2 bytes");
                }
            }
            VariableDeclarationValue::Regex(_) => {
                // clamscan: "wide modifier [w] is not supported for regex subsigs", the rule is dropped.
                if m.wide {
                    return Verdict::Skip("YARA wide regular expression (not read by clamscan)");
                }
            }
            VariableDeclarationValue::HexString(tokens) => {
                if has_negation(tokens) {
                    return Verdict::Skip("YARA hex string with `~` (not read by clamscan)");
                }
                if let Err(message) = check_hex(tokens) {
                    return Verdict::Malformed {
                        message: format!("YARA rule {}: string ${}: {message}", rule.name, v.name),
                        at: v.span.start,
                    };
                }
            }
        }
    }
    Verdict::Load
}

fn has_negation(tokens: &[Token]) -> bool {
    tokens.iter().any(|t| match t {
        Token::NotByte(_) | Token::NotMaskedByte(..) => true,
        Token::Alternatives(alts) => alts.iter().any(|a| has_negation(a)),
        _ => false,
    })
}

/// clamscan turns a hex string into a body pattern: every part between jumps must be at least two bytes
/// long ("Single byte subpatterns unsupported"), the whole at least two ("string is too short"), with two
/// exact bytes in a row somewhere ("Can't find a static subpattern of length 2"). Each is fatal.
fn check_hex(tokens: &[Token]) -> Result<(), String> {
    let width = |t: &Token| match t {
        Token::Jump(_) => 0usize,
        _ => 1,
    };
    let total: usize = tokens.iter().map(width).sum();
    if total < 2 {
        return Err("string is too short (2 bytes at least)".into());
    }
    for part in tokens.split(|t| matches!(t, Token::Jump(_))) {
        if part.len() == 1 {
            return Err("a part between jumps is a single byte, which clamscan refuses".into());
        }
    }
    if !has_static_pair(tokens) {
        return Err("no two exact bytes in a row to search for".into());
    }
    Ok(())
}

fn has_static_pair(tokens: &[Token]) -> bool {
    let exact = |t: &Token| matches!(t, Token::Byte(_));
    tokens.windows(2).any(|w| exact(&w[0]) && exact(&w[1]))
        || tokens.iter().any(|t| match t {
            // Every branch of an alternative must have its own anchor for it to be one.
            Token::Alternatives(alts) => alts.iter().all(|a| has_static_pair(a)),
            _ => false,
        })
}

/// Words of YARA 4 conditions that clamscan 1.4.6 does not know: "undefined identifier" for the big-endian
/// reads, `defined` and `none`; string operators, which it loads and never matches (`matches`) or on
/// which it crashes (`contains`, `"x" == "x"`: a segmentation fault), so dropped here.
const UNKNOWN_WORDS: [&str; 15] = [
    "uint8be",
    "uint16be",
    "uint32be",
    "int8be",
    "int16be",
    "int32be",
    "defined",
    "none",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "iequals",
];

const CONDITION_SKIP: &str = "YARA condition with what clamscan's grammar lacks";

/// What clamscan cannot read in the condition of `text` (a rule's source), as a skip reason.
fn check_condition(text: &[u8]) -> Option<&'static str> {
    use super::split::{tokens, Tok};
    let toks = tokens(text);
    let word = |i: usize| {
        toks.get(i)
            .filter(|t| t.0 == Tok::Word)
            .map(|t| &text[t.1..t.2])
    };
    let punct = |i: usize| {
        toks.get(i)
            .filter(|t| t.0 == Tok::Other)
            .map_or(0, |t| text[t.1])
    };
    let start = (0..toks.len()).find(|&i| word(i) == Some(b"condition"))?;
    for i in start + 1..toks.len() {
        if let Some(w) = word(i) {
            if w == b"matches" || UNKNOWN_WORDS.iter().any(|u| u.as_bytes() == w) {
                return Some(CONDITION_SKIP);
            }
            if w == b"of" && of_has_range(text, &toks[i + 1..]) {
                return Some(CONDITION_SKIP);
            }
        }
        // A text string (a comparison), `!a` (a length), `50% of`, a real number `1.5`.
        let t = toks[i];
        let is_text = t.0 == Tok::Text && text[t.1] == b'"';
        let length = punct(i) == b'!' && word(i + 1).is_some();
        let digit = |j: usize| punct(j).is_ascii_digit();
        let real = punct(i) == b'.' && i > 0 && digit(i - 1) && digit(i + 1);
        let percent = punct(i) == b'%' && word(i + 1) == Some(b"of");
        if is_text || length || percent || real {
            return Some(CONDITION_SKIP);
        }
    }
    None
}

/// Whether the `of` expression that `after` follows has an `in` or `at` of its own (`any of ($a) in
/// (0..10)`, YARA 4.2), which clamscan reads as a syntax error.
fn of_has_range(text: &[u8], after: &[(super::split::Tok, usize, usize)]) -> bool {
    let mut depth = 0i32;
    for t in after {
        match &text[t.1..t.2] {
            b"(" => depth += 1,
            b")" => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            b"in" | b"at" if depth == 0 => return true,
            b"and" | b"or" | b":" | b"}" if depth == 0 => return false,
            _ => {}
        }
    }
    false
}
