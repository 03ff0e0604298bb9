//! Cuts a YARA file into the pieces clamscan 1.4.6 loads or drops one at a time: each rule (with its
//! `private`/`global` modifiers), and whatever lies between rules (imports, includes, stray text).
//!
//! clamscan's parser recovers from an error by dropping the rule it is in and going on with the next
//! `rule` keyword (tests/ORACLE.md §13f): a rule whose closing brace is missing is dropped and the next
//! rule still loads, and stray text between two rules drops neither. Cutting first and parsing each piece
//! alone gives the same result. The cut only needs to know which bytes are strings, regular expressions
//! and comments, whose contents never start or end a rule. Works on bytes: never fails, never panics,
//! linear in the input.

/// A piece of a YARA file: `start..end` in bytes, and whether it begins with a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub start: usize,
    pub end: usize,
    pub rule: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Word,
    Text,
    Open,
    Close,
    Equals,
    Other,
}

/// The significant tokens of `src` (comments and spaces left out), as `(kind, start, end)`.
pub(crate) fn tokens(src: &[u8]) -> Vec<(Tok, usize, usize)> {
    let mut out: Vec<(Tok, usize, usize)> = Vec::new();
    let mut i = 0;
    let find = |from: usize, what: &[u8]| -> usize {
        memchr::memmem::find(src.get(from..).unwrap_or(&[]), what)
            .map_or(src.len(), |p| from + p + what.len())
    };
    while let Some(&c) = src.get(i) {
        let start = i;
        let next = src.get(i + 1).copied();
        let kind = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'/' if next == Some(b'/') => {
                i = memchr::memchr(b'\n', &src[i..]).map_or(src.len(), |p| i + p);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = find(i + 2, b"*/");
                continue;
            }
            // clamscan's strings run past line ends up to the next unescaped quote (an unterminated
            // string swallows the rest of the file: tests/ORACLE.md §13f).
            b'"' => {
                i = skip_quoted(src, i + 1, b'"', false);
                Tok::Text
            }
            // A regular expression is a string's value or the operand of `matches`.
            b'/' if out.last().is_some_and(|&(k, s, e)| {
                k == Tok::Equals || (k == Tok::Word && &src[s..e] == b"matches")
            }) =>
            {
                i = skip_quoted(src, i + 1, b'/', true);
                Tok::Text
            }
            b'{' => {
                i += 1;
                Tok::Open
            }
            b'}' => {
                i += 1;
                Tok::Close
            }
            b'=' => {
                i += 1;
                if src.get(i) == Some(&b'=') {
                    i += 1;
                    Tok::Other
                } else {
                    Tok::Equals
                }
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while src
                    .get(i)
                    .is_some_and(|&b| b == b'_' || b.is_ascii_alphanumeric())
                {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
                i += 1;
                Tok::Other
            }
        };
        out.push((kind, start, i));
    }
    out
}

/// The end of a quoted run whose opening quote is before `from`: after the closing `quote`, skipping
/// backslash escapes; a regular expression also ends at a line end.
fn skip_quoted(src: &[u8], mut i: usize, quote: u8, stops_at_newline: bool) -> usize {
    while let Some(&b) = src.get(i) {
        i += 1;
        if b == b'\\' {
            i += 1;
        } else if b == quote || (stops_at_newline && b == b'\n') {
            return i.min(src.len());
        }
    }
    src.len()
}

/// The pieces of `src`, in order, covering every token.
pub(crate) fn split(src: &[u8]) -> Vec<Piece> {
    let toks = tokens(src);
    let word = |t: (Tok, usize, usize)| (t.0 == Tok::Word).then(|| &src[t.1..t.2]);
    let mut pieces = Vec::new();
    // The current piece: its start and whether it is a rule; its brace depth.
    let mut cur: Option<(usize, bool)> = None;
    let mut depth = 0u32;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        // A rule starts at its modifiers: `private`, `global`, in any order, then `rule`.
        let mut j = i;
        while matches!(word(toks[j]), Some(b"private" | b"global")) && j + 1 < toks.len() {
            j += 1;
        }
        if word(toks[j]) == Some(b"rule") {
            if let Some((s, rule)) = cur.take() {
                pieces.push(Piece {
                    start: s,
                    end: t.1,
                    rule,
                });
            }
            cur = Some((t.1, true));
            depth = 0;
            i = j + 1;
            continue;
        }
        match (cur, t.0) {
            (Some((_, true)), Tok::Open) => depth += 1,
            (Some((s, true)), Tok::Close) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    pieces.push(Piece {
                        start: s,
                        end: t.2,
                        rule: true,
                    });
                    cur = None;
                }
            }
            // Between rules, each import or include is a piece of its own.
            (_, Tok::Word) if matches!(word(t), Some(b"import" | b"include")) => {
                if let Some((s, rule)) = cur.take() {
                    if rule {
                        // Inside a rule: part of it (and an error there).
                        cur = Some((s, rule));
                    } else {
                        pieces.push(Piece {
                            start: s,
                            end: t.1,
                            rule,
                        });
                    }
                }
                if cur.is_none() {
                    cur = Some((t.1, false));
                }
            }
            (None, _) => cur = Some((t.1, false)),
            _ => {}
        }
        i += 1;
    }
    if let Some((s, rule)) = cur {
        pieces.push(Piece {
            start: s,
            end: src.len(),
            rule,
        });
    }
    pieces
}
