//! PCRE subsignatures of logical signatures: `[Offset:]Trigger/Regex/[Flags]`, parsed and compiled.
//!
//! Owns the syntax and the regex compilation (with PCRE2, the library clamscan uses, so the dialect is the
//! same); never touches file data (matching is `scan::special`). As clamscan 1.4.6 (tests/ORACLE.md §13l):
//! the trigger is the text before the first `/` (after an optional `Offset:`), the regex runs to the last
//! `/`, the flags follow; a missing trigger, an empty trigger or regex, a trigger naming this subsignature
//! or a later one, an unknown flag (`D` too) and a regex PCRE2 refuses are load errors.

use super::{offset, Offset};
use crate::logic::{self, Expr};

/// clamscan's match-time limits for PCRE subsignatures (its `PCREMatchLimit`, `PCRERecMatchLimit`,
/// `PCREMaxFileSize` defaults). A regex that reaches a limit counts as not matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcreLimits {
    pub match_limit: u32,
    pub depth_limit: u32,
    /// Larger files are not PCRE-scanned (their PCRE subsignatures count 0).
    pub max_file_size: u64,
}

pub const DEFAULT_LIMITS: PcreLimits = PcreLimits {
    match_limit: 100_000,
    depth_limit: 2_000,
    max_file_size: 100 * 1024 * 1024,
};

/// Flags: `g` count every match, `r` rolling (a plain offset is where the search starts, not where the
/// match must start), `e` encompass (the match must end within `offset,shift`), and PCRE options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcreFlags {
    pub global: bool,
    pub rolling: bool,
    pub encompass: bool,
    pub caseless: bool,
    pub dotall: bool,
    pub multiline: bool,
    pub extended: bool,
    pub anchored: bool,
    pub ungreedy: bool,
    pub dollar_endonly: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PcreSub {
    pub offset: Offset,
    pub trigger: Expr,
    pub regex: String,
    pub flags: PcreFlags,
}

/// Skip reason for the `E` flag: PCRE2's DOLLAR_ENDONLY has no in-pattern form the bindings can set.
pub const SKIP_DOLLAR_ENDONLY: &str = "PCRE flag E (dollar end-only) not supported";

/// Whether subsignature text is PCRE-shaped (hex signatures, offsets and modifiers never hold '/').
pub fn looks_like(s: &str) -> bool {
    s.contains('/')
}

/// Parses subsignature `index` (`Offset:` checked against `target_code` as hex subsignatures' are).
pub fn parse(s: &str, index: usize, target_code: u32) -> Result<PcreSub, String> {
    let first = s.find('/').ok_or("PCRE subsignature without '/'")?;
    let last = s.rfind('/').unwrap_or(first);
    if last == first {
        return Err("PCRE subsignature: mismatched '/' delimiter".into());
    }
    let (head, regex, flag_text) = (&s[..first], &s[first + 1..last], &s[last + 1..]);
    let (off_text, trigger_text) = match head.rsplit_once(':') {
        Some((o, t)) => (Some(o), t),
        None => (None, head),
    };
    if trigger_text.is_empty() || regex.is_empty() {
        return Err("PCRE subsignature: trigger and regex must not be empty".into());
    }
    let trigger = logic::parse(trigger_text).map_err(|m| format!("PCRE trigger: {m}"))?;
    let top = trigger.max_subsig() as usize;
    if top == index {
        return Err(format!(
            "PCRE subsignature {index}: trigger is self-referential"
        ));
    }
    if top > index {
        return Err(format!(
            "PCRE subsignature {index}: trigger refers to subsequent subsignature {top}"
        ));
    }
    let offset = match off_text {
        None | Some("") | Some("*") => Offset::Any,
        Some(o) => {
            let off = offset::parse(o).map_err(|m| format!("bad PCRE offset `{o}`: {m}"))?;
            if off.needs_exe() && !super::is_exe_target(target_code) {
                return Err(format!("PCRE offset {o} needs an executable target"));
            }
            off
        }
    };
    let mut f = PcreFlags::default();
    for c in flag_text.chars() {
        match c {
            'g' => f.global = true,
            'r' => f.rolling = true,
            'e' => f.encompass = true,
            'i' => f.caseless = true,
            's' => f.dotall = true,
            'm' => f.multiline = true,
            'x' => f.extended = true,
            'A' => f.anchored = true,
            'U' => f.ungreedy = true,
            'E' => f.dollar_endonly = true,
            _ => return Err(format!("unknown PCRE flag '{c}'")),
        }
    }
    Ok(PcreSub {
        offset,
        trigger,
        regex: regex.to_string(),
        flags: f,
    })
}

impl PcreSub {
    /// Compiles the regex with `limits`, as bytes (no UTF), without JIT (whose stack, not the depth
    /// limit, would bound recursion). Limits are set in the pattern (`(*LIMIT_MATCH=n)`), which can only
    /// lower what the library allows.
    pub fn compile(&self, limits: &PcreLimits) -> Result<pcre2::bytes::Regex, String> {
        let (verbs, rest) = split_leading_verbs(&self.regex);
        let mut pattern = format!(
            "(*LIMIT_MATCH={})(*LIMIT_DEPTH={}){verbs}",
            limits.match_limit, limits.depth_limit
        );
        if self.flags.ungreedy {
            pattern.push_str("(?U)");
        }
        pattern.push_str(rest);
        pcre2::bytes::RegexBuilder::new()
            .caseless(self.flags.caseless)
            .dotall(self.flags.dotall)
            .multi_line(self.flags.multiline)
            .extended(self.flags.extended)
            .build(&pattern)
            .map_err(|e| format!("PCRE2 compilation failed: {e}"))
    }
}

/// Splits a pattern's leading `(*VERB)` settings (which must stay first) from the rest.
fn split_leading_verbs(p: &str) -> (&str, &str) {
    let mut end = 0;
    while p[end..].starts_with("(*") {
        match p[end..].find(')') {
            Some(close)
                if p[end + 2..end + close].bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'='
                }) =>
            {
                end += close + 1
            }
            _ => break,
        }
    }
    p.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str, i: usize) -> PcreSub {
        parse(s, i, 0).unwrap()
    }

    #[test]
    fn splits_offset_trigger_regex_flags() {
        // clamscan 1.4.6: `0/cl/av/` is the regex `cl/av` (first and last '/').
        let p = ok("0/cl/av/", 1);
        assert_eq!(p.regex, "cl/av");
        let p = ok("10,5:0&1/a:b/gre", 2);
        assert_eq!(p.offset, offset::parse("10,5").unwrap());
        assert_eq!(p.regex, "a:b");
        assert!(p.flags.global && p.flags.rolling && p.flags.encompass);
        assert_eq!(ok("*:0/x/", 1).offset, Offset::Any);
        assert_eq!(ok("(0)/x/", 1).trigger, Expr::Sub(0));
    }

    #[test]
    fn clamscan_load_errors() {
        // clamscan 1.4.6: "PCRE subsig must contain logical trigger", "mismatched '/' delimiter",
        // "trigger or pattern cannot be an empty string", "self-referential", "refers to subsequent subsig",
        // "unknown/extra pcre option encountered D", "cli_caloff: Invalid offset type for target 0".
        assert!(parse("/clamav/", 1, 0).is_err());
        assert!(parse("0/clamav", 1, 0).is_err());
        assert!(parse("0//", 1, 0).is_err());
        assert!(parse("0/clamav/", 0, 0)
            .unwrap_err()
            .contains("self-referential"));
        assert!(parse("5/clamav/", 1, 0).unwrap_err().contains("subsequent"));
        assert!(parse("0/clamav/D", 1, 0).unwrap_err().contains("'D'"));
        assert!(parse("0/clamav/Z", 1, 0).is_err());
        assert!(parse("EP+0:0/clamav/", 1, 0).is_err());
        assert!(parse("EP+0:0/clamav/", 1, 1).is_ok());
        // clamscan 1.4.6: every documented flag but D loads, repeated flags too.
        assert!(parse("0/clamav/gresmxAUEi", 1, 0).is_ok());
        assert!(parse("0/clamav/gg", 1, 0).is_ok());
        // clamscan 1.4.6: "PCRE2 compilation failed at offset 7: missing closing parenthesis".
        assert!(ok("0/clam(av/", 1).compile(&DEFAULT_LIMITS).is_err());
    }

    #[test]
    fn compiles_with_limits_and_leading_verbs() {
        let r = ok("0/(*CR)a.b/U", 1).compile(&DEFAULT_LIMITS).unwrap();
        assert!(r.is_match(b"xa\nb").unwrap());
        assert_eq!(
            split_leading_verbs("(*UTF)(*CR)ab(*F)"),
            ("(*UTF)(*CR)", "ab(*F)")
        );
        // A catastrophic regex hits the match limit: an error (counted as no match), never a hang.
        let r = ok("0/(a+)+$/", 1).compile(&DEFAULT_LIMITS).unwrap();
        let subject = [b'a'; 40].iter().copied().chain([b'b']).collect::<Vec<_>>();
        assert!(r.is_match(&subject).is_err());
    }
}
