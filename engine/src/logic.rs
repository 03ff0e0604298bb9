//! Logical expressions of `.ldb` signatures and their evaluation over per-subsignature match counts.
//!
//! # Grammar
//!
//! ```text
//! expr  := term [ ('&' | '|') expr ]          -- right-associative, no precedence
//! term  := INDEX [count] | '(' expr ')' [count]
//! count := ('=' | '>' | '<') NUMBER [ ',' NUMBER ]
//! ```
//!
//! ClamAV documents only the fully parenthesised forms (`(A&B)`, `(A|B)`, `A=X`, `A=X,Y`, `A>X`, `A>X,Y`, `A<X`,
//! `A<X,Y`), but `clamscan` 1.4.6 also accepts operators mixed without parentheses and reads them right to
//! left with no precedence: `0&1|2` is `0&(1|2)` and `0|1&2` is `0|(1&2)`. A count binds to the term just
//! before it: `0=0&1` is `(0=0)&1`, `0&1=0` is `0&(1=0)`. Spaces are ignored, indexes may have leading zeros
//! (`00` is subsignature 0). At most [`MAX_SUBSIGS`] subsignatures (indexes 0..=63).
//!
//! Rejected, as `clamscan` rejects them: an empty operand (`0||1`, `0|`, `()`), unbalanced parentheses, a
//! count without a number (`0>`), and a count on a parenthesised single index (`(0)>1`; write `0>1`).
//! Rejected here although `clamscan` tolerates them with odd results: stray characters (`0 x|1`), chained
//! counts (`0>1>0`), a third count number (`0>1,1,1`), an empty `,` part, numbers beyond `u32`.
//!
//! # Count semantics (confirmed with clamscan 1.4.6)
//!
//! A subsignature's count is the number of distinct offsets at which one of its patterns starts a match:
//! `4141` in `AAAA` counts 3 (overlapping starts count), `4142*4344` in `ABCDABCD` counts 2 (two starts,
//! three start/end pairs), a `::wa` subsignature counts its ASCII and wide starts together.
//!
//! Every sub-expression yields a *tally*: whether it holds, a total match count, and a number of distinct
//! subsignatures. `eval` is whether the whole expression holds.
//!
//! | expression            | holds when                               | total                 | distinct        |
//! |-----------------------|------------------------------------------|-----------------------|-----------------|
//! | `i`                   | `count[i] > 0`                           | `count[i]`            | 1 if it holds   |
//! | `A & B`               | both hold                                | sum if it holds, else 0 | sum if it holds, else 0 |
//! | `A \| B`              | either holds                             | sum                   | sum             |
//! | `i op X[,Y]`          | `count[i] op X` (`,Y` ignored)           | `count[i]` if it holds, else 0 | 1 if it holds, else 0 |
//! | `(A) op X[,Y]`        | `total(A) op X` and `distinct(A) >= Y`   | `total(A)` if it holds, else 0 | **0**   |
//!
//! So, with `k`, `z` the counts of subsignatures 0 and 1:
//! - `0>2` needs three or more match offsets of subsignature 0; `0=0` is negation; `0<3` also holds when
//!   subsignature 0 never matched. `0>2,2` is the same as `0>2`: on a single index the `,Y` part is ignored.
//! - `(0|1)>2` needs `k+z > 2`; `(0|1)>2,2` needs `k+z > 2` and both `k > 0` and `z > 0` (the `,Y` part is a
//!   minimum: `(0|1|2)=3,2` holds for counts 0/2/1 and 1/1/1). `(0|1)<3,2` holds only for `k = z = 1`.
//! - An `&` block counts 0 when it does not hold: `(0&1)>2` fails for `k = 3, z = 0`, `(0&1)<3` holds there.
//! - Totals add per sub-expression, so a subsignature named twice counts twice: `((0|1)&(1|2))>2` holds for
//!   counts 0/2/0 (2 + 2).
//! - A count inside a count passes its total on when it holds: `((0>0)|(1>0))=3` holds for `k = 3, z = 0`.
//!   A count on a single index adds one distinct subsignature when it holds, even with a count of 0:
//!   `((0=0)|1|2)>0,2` holds for counts 0/0/1. A count on a block adds no distinct subsignature at all:
//!   `(((0|1)>0)|2)>0,2` never holds, `(((0|1)>1)|2)>1,1` needs subsignature 2.
//!
//! The experiments are replayed as the `clamscan_observations` unit test.

use std::fmt;

/// The most subsignatures a logical signature may have (ClamAV rejects a 65th).
pub const MAX_SUBSIGS: u32 = 64;

/// Deepest parenthesis nesting accepted (a bound on recursion, far above anything in real databases).
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Gt,
    Lt,
}

impl CmpOp {
    fn holds(self, value: u64, n: u32) -> bool {
        let n = u64::from(n);
        match self {
            CmpOp::Eq => value == n,
            CmpOp::Gt => value > n,
            CmpOp::Lt => value < n,
        }
    }
    fn symbol(self) -> char {
        match self {
            CmpOp::Eq => '=',
            CmpOp::Gt => '>',
            CmpOp::Lt => '<',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Sub(u32),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `expr=X`, `expr>X`, `expr<X`, with `,Y`: at least Y distinct subsignatures of `expr` matched.
    /// On a single index (`expr` is [`Expr::Sub`]) ClamAV ignores `,Y`; see the module documentation.
    Count {
        expr: Box<Expr>,
        op: CmpOp,
        n: u32,
        distinct: Option<u32>,
    },
}

/// What a sub-expression contributes to the expression around it; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Whether the sub-expression holds.
    pub holds: bool,
    /// Matches it counts for an enclosing `=X`, `>X`, `<X`.
    pub total: u64,
    /// Distinct subsignatures it counts for an enclosing `,Y`.
    pub distinct: u32,
}

/// Parses a logical expression. Errors name the 1-based character position of the offending token.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        text: s,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.pos == p.s.len() {
        return Err("empty logical expression".to_string());
    }
    let (e, _) = p.expr()?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(match p.s[p.pos] {
            b')' => p.err("unbalanced parentheses: ')' without a matching '('"),
            _ => p.err_here("'&', '|' or the end of the expression"),
        });
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn err(&self, msg: &str) -> String {
        format!(
            "logical expression `{}`: {msg} at position {}",
            self.text,
            self.pos + 1
        )
    }

    /// "unexpected X at position N, expected WHAT" for the token under the cursor.
    fn err_here(&self, expected: &str) -> String {
        let found = match self.text[self.pos.min(self.text.len())..].chars().next() {
            Some(c) => format!("unexpected '{c}'"),
            None => "unexpected end".to_string(),
        };
        self.err(&format!("{found}, expected {expected}"))
    }

    /// `expr := term [op expr]`. Returns the expression and whether it is a bare `(index)`.
    fn expr(&mut self) -> Result<(Expr, bool), String> {
        let (first, bare) = self.term()?;
        let op = match self.peek() {
            Some(c @ (b'&' | b'|')) => c,
            _ => return Ok((first, bare)),
        };
        self.pos += 1;
        if matches!(self.peek(), None | Some(b'&' | b'|' | b')')) {
            return Err(self.err_here("a subsignature index or '(' after the operator"));
        }
        let (rest, _) = self.expr()?;
        // Right-associative: `a op rest`. Same-operator chains flatten (semantics are unchanged).
        let e = match (op, rest) {
            (b'&', Expr::And(mut v)) => {
                v.insert(0, first);
                Expr::And(v)
            }
            (b'&', r) => Expr::And(vec![first, r]),
            (_, Expr::Or(mut v)) => {
                v.insert(0, first);
                Expr::Or(v)
            }
            (_, r) => Expr::Or(vec![first, r]),
        };
        Ok((e, false))
    }

    /// `term := INDEX [count] | '(' expr ')' [count]`. The flag tells a bare `(index)` (or a bare index).
    fn term(&mut self) -> Result<(Expr, bool), String> {
        let (e, parenthesised_index) = match self.peek() {
            Some(b'(') => {
                let open = self.pos;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err("parentheses nested too deeply"));
                }
                self.pos += 1;
                if self.peek() == Some(b')') {
                    return Err(self.err("empty parentheses"));
                }
                let (inner, bare) = self.expr()?;
                if self.peek() != Some(b')') {
                    if self.pos >= self.s.len() {
                        self.pos = open;
                        return Err(self.err("unbalanced parentheses: '(' never closed"));
                    }
                    return Err(self.err_here("')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                (inner, bare)
            }
            Some(c) if c.is_ascii_digit() => {
                let at = self.pos;
                let i = self.number("subsignature index")?;
                if i >= MAX_SUBSIGS {
                    self.pos = at;
                    return Err(self.err(&format!(
                        "subsignature index {i} beyond the {MAX_SUBSIGS} a logical signature may have"
                    )));
                }
                return self.count_suffix(Expr::Sub(i), false);
            }
            _ => return Err(self.err_here("a subsignature index or '('")),
        };
        self.count_suffix(e, parenthesised_index)
    }

    /// An optional `=X`, `>X`, `<X` with optional `,Y` after a term.
    fn count_suffix(&mut self, e: Expr, parenthesised_index: bool) -> Result<(Expr, bool), String> {
        let op = match self.peek() {
            Some(b'=') => CmpOp::Eq,
            Some(b'>') => CmpOp::Gt,
            Some(b'<') => CmpOp::Lt,
            _ => {
                let bare = matches!(e, Expr::Sub(_));
                return Ok((e, bare));
            }
        };
        if parenthesised_index {
            return Err(self.err(&format!(
                "a count on a parenthesised single subsignature (write `{}` without the parentheses)",
                match &e {
                    Expr::Sub(i) => format!("{i}{}N", op.symbol()),
                    _ => String::new(),
                }
            )));
        }
        self.pos += 1;
        if !matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            return Err(self.err_here(&format!("a number after '{}'", op.symbol())));
        }
        let n = self.number("count")?;
        let mut distinct = None;
        if self.peek() == Some(b',') {
            self.pos += 1;
            if !matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
                return Err(self.err_here("a number of distinct subsignatures after ','"));
            }
            distinct = Some(self.number("number of distinct subsignatures")?);
            if self.peek() == Some(b',') {
                return Err(self.err("a count takes at most two numbers (`X,Y`)"));
            }
        }
        if matches!(self.peek(), Some(b'=' | b'>' | b'<')) {
            return Err(self.err("chained counts (parenthesise the inner count)"));
        }
        Ok((
            Expr::Count {
                expr: Box::new(e),
                op,
                n,
                distinct,
            },
            false,
        ))
    }

    fn number(&mut self, what: &str) -> Result<u32, String> {
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.text[start..self.pos].parse::<u32>().map_err(|_| {
            let digits = &self.text[start..self.pos];
            self.pos = start;
            self.err(&format!("{what} {digits} too large"))
        })
    }
}

impl Expr {
    /// `counts[i]` is how many times subsignature `i` matched (distinct start offsets); missing entries are 0.
    pub fn eval(&self, counts: &[u32]) -> bool {
        self.tally(counts).holds
    }

    /// The tally of this expression over `counts`, as defined in the module documentation.
    pub fn tally(&self, counts: &[u32]) -> Tally {
        let count_of = |i: u32| u64::from(counts.get(i as usize).copied().unwrap_or(0));
        match self {
            Expr::Sub(i) => {
                let c = count_of(*i);
                Tally {
                    holds: c > 0,
                    total: c,
                    distinct: u32::from(c > 0),
                }
            }
            Expr::And(v) => {
                let mut t = Tally {
                    holds: true,
                    total: 0,
                    distinct: 0,
                };
                for e in v {
                    let x = e.tally(counts);
                    if !x.holds {
                        return Tally::default();
                    }
                    t.total += x.total;
                    t.distinct += x.distinct;
                }
                t
            }
            Expr::Or(v) => v.iter().fold(Tally::default(), |mut t, e| {
                let x = e.tally(counts);
                t.holds |= x.holds;
                t.total += x.total;
                t.distinct += x.distinct;
                t
            }),
            Expr::Count {
                expr,
                op,
                n,
                distinct,
            } => match **expr {
                Expr::Sub(i) => {
                    let c = count_of(i);
                    if op.holds(c, *n) {
                        Tally {
                            holds: true,
                            total: c,
                            distinct: 1,
                        }
                    } else {
                        Tally::default()
                    }
                }
                ref block => {
                    let x = block.tally(counts);
                    if op.holds(x.total, *n) && distinct.is_none_or(|m| x.distinct >= m) {
                        Tally {
                            holds: true,
                            total: x.total,
                            distinct: 0,
                        }
                    } else {
                        Tally::default()
                    }
                }
            },
        }
    }

    /// The highest subsignature index the expression names.
    pub fn max_subsig(&self) -> u32 {
        match self {
            Expr::Sub(i) => *i,
            Expr::And(v) | Expr::Or(v) => v.iter().map(Expr::max_subsig).max().unwrap_or(0),
            Expr::Count { expr, .. } => expr.max_subsig(),
        }
    }
}

/// Writes the expression back in ClamAV syntax, fully parenthesised (parses to an equal `Expr`).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Expr], sep: char| -> fmt::Result {
            write!(f, "(")?;
            for (k, e) in v.iter().enumerate() {
                if k > 0 {
                    write!(f, "{sep}")?;
                }
                write!(f, "{e}")?;
            }
            write!(f, ")")
        };
        match self {
            Expr::Sub(i) => write!(f, "{i}"),
            Expr::And(v) => list(f, v, '&'),
            Expr::Or(v) => list(f, v, '|'),
            Expr::Count {
                expr,
                op,
                n,
                distinct,
            } => {
                match **expr {
                    Expr::Sub(i) => write!(f, "({i}{}{n}", op.symbol())?,
                    ref e => write!(f, "({e}{}{n}", op.symbol())?,
                }
                if let Some(m) = distinct {
                    write!(f, ",{m}")?;
                }
                write!(f, ")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(i: u32) -> Expr {
        Expr::Sub(i)
    }
    fn count(e: Expr, op: CmpOp, n: u32, distinct: Option<u32>) -> Expr {
        Expr::Count {
            expr: Box::new(e),
            op,
            n,
            distinct,
        }
    }

    #[test]
    fn parses_indexes_and_operators() {
        assert_eq!(parse("0").unwrap(), sub(0));
        assert_eq!(parse("63").unwrap(), sub(63));
        assert_eq!(parse("007").unwrap(), sub(7));
        assert_eq!(parse("0&1").unwrap(), Expr::And(vec![sub(0), sub(1)]));
        assert_eq!(
            parse("0|1|2").unwrap(),
            Expr::Or(vec![sub(0), sub(1), sub(2)])
        );
        assert_eq!(
            parse("(0&1)&2").unwrap(),
            Expr::And(vec![Expr::And(vec![sub(0), sub(1)]), sub(2)])
        );
        assert_eq!(
            parse("(0&1&2&3)&(4|1)").unwrap(),
            Expr::And(vec![
                Expr::And(vec![sub(0), sub(1), sub(2), sub(3)]),
                Expr::Or(vec![sub(4), sub(1)])
            ])
        );
        assert_eq!(
            parse(" ( 0 | 1 ) & 2 ").unwrap(),
            Expr::And(vec![Expr::Or(vec![sub(0), sub(1)]), sub(2)])
        );
        assert_eq!(parse("(0)").unwrap(), sub(0));
        assert_eq!(parse("((0))|1").unwrap(), Expr::Or(vec![sub(0), sub(1)]));
    }

    #[test]
    fn mixed_operators_are_right_associative_without_precedence() {
        assert_eq!(
            parse("0&1|2").unwrap(),
            Expr::And(vec![sub(0), Expr::Or(vec![sub(1), sub(2)])])
        );
        assert_eq!(
            parse("0|1&2").unwrap(),
            Expr::Or(vec![sub(0), Expr::And(vec![sub(1), sub(2)])])
        );
        assert_eq!(
            parse("0|1&2|3").unwrap(),
            Expr::Or(vec![
                sub(0),
                Expr::And(vec![sub(1), Expr::Or(vec![sub(2), sub(3)])])
            ])
        );
    }

    #[test]
    fn parses_counts() {
        assert_eq!(parse("0=0").unwrap(), count(sub(0), CmpOp::Eq, 0, None));
        assert_eq!(parse("0>2").unwrap(), count(sub(0), CmpOp::Gt, 2, None));
        assert_eq!(parse("0<3").unwrap(), count(sub(0), CmpOp::Lt, 3, None));
        assert_eq!(
            parse("0=2,1").unwrap(),
            count(sub(0), CmpOp::Eq, 2, Some(1))
        );
        let or01 = Expr::Or(vec![sub(0), sub(1)]);
        assert_eq!(
            parse("(0|1)>5,2").unwrap(),
            count(or01.clone(), CmpOp::Gt, 5, Some(2))
        );
        assert_eq!(
            parse("(0|1)<5,2").unwrap(),
            count(or01.clone(), CmpOp::Lt, 5, Some(2))
        );
        assert_eq!(
            parse("(0|1) = 3 , 2").unwrap(),
            count(or01.clone(), CmpOp::Eq, 3, Some(2))
        );
        assert_eq!(parse("((0|1)>1)").unwrap(), count(or01, CmpOp::Gt, 1, None));
        assert_eq!(
            parse("0=0&1").unwrap(),
            Expr::And(vec![count(sub(0), CmpOp::Eq, 0, None), sub(1)])
        );
        assert_eq!(
            parse("0&1=0").unwrap(),
            Expr::And(vec![sub(0), count(sub(1), CmpOp::Eq, 0, None)])
        );
        assert_eq!(
            parse("0>4294967295").unwrap(),
            count(sub(0), CmpOp::Gt, u32::MAX, None)
        );
        assert_eq!(
            parse("((0|1|2)>5,2)&(3|1)").unwrap(),
            Expr::And(vec![
                count(
                    Expr::Or(vec![sub(0), sub(1), sub(2)]),
                    CmpOp::Gt,
                    5,
                    Some(2)
                ),
                Expr::Or(vec![sub(3), sub(1)])
            ])
        );
    }

    fn err(s: &str) -> String {
        parse(s).expect_err(s)
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        assert_eq!(err(""), "empty logical expression");
        assert_eq!(err("   "), "empty logical expression");
        let e = err("0&x");
        assert!(
            e.contains("unexpected 'x'") && e.contains("position 3"),
            "{e}"
        );
        let e = err("0 x|1");
        assert!(
            e.contains("unexpected 'x'") && e.contains("position 3"),
            "{e}"
        );
        let e = err("(0|1");
        assert!(
            e.contains("'(' never closed") && e.contains("position 1"),
            "{e}"
        );
        let e = err("(0|1)&(2");
        assert!(
            e.contains("'(' never closed") && e.contains("position 7"),
            "{e}"
        );
        let e = err("0|1)");
        assert!(
            e.contains("')' without a matching '('") && e.contains("position 4"),
            "{e}"
        );
        let e = err("0||1");
        assert!(
            e.contains("unexpected '|'") && e.contains("position 3"),
            "{e}"
        );
        let e = err("0|");
        assert!(e.contains("unexpected end"), "{e}");
        let e = err("&0");
        assert!(
            e.contains("unexpected '&'") && e.contains("position 1"),
            "{e}"
        );
        assert!(err("()|0").contains("empty parentheses"));
        assert!(err("0>").contains("a number after '>'"));
        assert!(err("(0|1)=x").contains("a number after '='"));
        assert!(err("0=1,").contains("after ','"));
        assert!(err("0>1,1,1").contains("at most two numbers"));
        assert!(err("0>1>0").contains("chained counts"));
        assert!(err("(0)>0").contains("parenthesised single subsignature"));
        assert!(err("((0))<3").contains("parenthesised single subsignature"));
        assert!(err("0|-1").contains("unexpected '-'"));
        let e = err("0|64");
        assert!(
            e.contains("index 64 beyond the 64") && e.contains("position 3"),
            "{e}"
        );
        assert!(err("0>4294967296").contains("count 4294967296 too large"));
        assert!(err("99999999999").contains("too large"));
        let deep = format!("{}0{}", "(".repeat(300), ")".repeat(300));
        assert!(err(&deep).contains("nested too deeply"));
    }

    #[test]
    fn max_subsig() {
        assert_eq!(parse("0").unwrap().max_subsig(), 0);
        assert_eq!(parse("(0&1&2&3)&(4|1)").unwrap().max_subsig(), 4);
        assert_eq!(parse("((7|1)>2,2)&3").unwrap().max_subsig(), 7);
        assert_eq!(parse("0&63=0").unwrap().max_subsig(), 63);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "0",
            "0&1|2",
            "((0|1|2)>5,2)&(3|1)",
            "0=0&1<2,1",
            "((0>0)|(1>0))=3",
            "(0&1&2&3)&(4|1)",
        ] {
            let e = parse(s).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e, "{s} -> {e}");
        }
    }

    #[test]
    fn eval_basics() {
        let e = parse("0&1").unwrap();
        assert!(e.eval(&[1, 1]));
        assert!(!e.eval(&[1, 0]));
        assert!(!e.eval(&[1])); // missing counts are 0
        let e = parse("0|1").unwrap();
        assert!(e.eval(&[0, 3]));
        assert!(!e.eval(&[]));
        assert!(parse("0=0").unwrap().eval(&[]));
        assert!(!parse("0=0").unwrap().eval(&[1]));
        // Large counts do not overflow.
        assert!(parse("(0|1)>4294967295").unwrap().eval(&[u32::MAX, 1]));
        assert_eq!(
            parse("((0|1)&(1|2))>2").unwrap().tally(&[0, 2, 0]),
            Tally {
                holds: true,
                total: 4,
                distinct: 0
            }
        );
        assert_eq!(
            parse("(0=0)|1").unwrap().tally(&[0, 2]),
            Tally {
                holds: true,
                total: 2,
                distinct: 2
            }
        );
    }

    /// Replays experiments run with clamscan 1.4.6 (`--normalize=no`, Target:0, padded non-tiny files whose
    /// subsignatures `4b4b`, `5a5a`, `5151` occur the given number of times at distinct offsets).
    /// Each row: expression, number of subsignatures, the count vectors (dot-separated) that alerted; every
    /// other vector in the grid (0..=5 for one subsignature, 0..=3 x 0..=2, 0..=2 x 0..=2 x 0..=1) did not.
    const OBSERVED: &[(&str, usize, &str)] = &[
        ("0", 1, "1 2 3 4 5"),
        ("0>2", 1, "3 4 5"),
        ("0=2", 1, "2"),
        ("0<3", 1, "0 1 2"),
        ("0=0", 1, "0"),
        ("0>2,2", 1, "3 4 5"),
        ("0<3,1", 1, "0 1 2"),
        ("0=0,1", 1, "0"),
        ("0=3,1", 1, "3"),
        ("0|1", 2, "0.1 0.2 1.0 1.1 1.2 2.0 2.1 2.2 3.0 3.1 3.2"),
        ("0&1", 2, "1.1 1.2 2.1 2.2 3.1 3.2"),
        ("(0|1)>2", 2, "1.2 2.1 2.2 3.0 3.1 3.2"),
        ("(0|1)>2,2", 2, "1.2 2.1 2.2 3.1 3.2"),
        ("(0|1)=3", 2, "1.2 2.1 3.0"),
        ("(0|1)=3,2", 2, "1.2 2.1"),
        ("(0|1)<3", 2, "0.0 0.1 0.2 1.0 1.1 2.0"),
        ("(0|1)<3,2", 2, "1.1"),
        ("(0|1)<3,1", 2, "0.1 0.2 1.0 1.1 2.0"),
        ("(0&1)>2", 2, "1.2 2.1 2.2 3.1 3.2"),
        ("(0&1)=3", 2, "1.2 2.1"),
        ("(0&1)<3", 2, "0.0 0.1 0.2 1.0 1.1 2.0 3.0"),
        ("(0&1)<3,1", 2, "1.1"),
        ("(0&1)>0,2", 2, "1.1 1.2 2.1 2.2 3.1 3.2"),
        ("(0|1)=0", 2, "0.0"),
        ("(0|1)=0,1", 2, ""),
        ("(0|1)>0,2", 2, "1.1 1.2 2.1 2.2 3.1 3.2"),
        ("((0>0)|(1>0))=2", 2, "0.2 1.1 2.0"),
        ("((0>0)|(1>0))=3", 2, "1.2 2.1 3.0"),
        ("((0>0)|(1>0))=4", 2, "2.2 3.1"),
        ("((0>0)|1)=3", 2, "1.2 2.1 3.0"),
        ("((0>0)|1)>1,2", 2, "1.1 1.2 2.1 2.2 3.1 3.2"),
        ("((0=0)|1)=0", 2, "0.0 1.0 2.0 3.0"),
        ("((0=0)|1)=1", 2, "0.1 1.1 2.1 3.1"),
        ("((0>1)&1)=3", 2, "2.1"),
        ("((0>1)&1)=4", 2, "2.2 3.1"),
        ("(0=0)|1", 2, "0.0 0.1 0.2 1.1 1.2 2.1 2.2 3.1 3.2"),
        ("(0=0)&1", 2, "0.1 0.2"),
        ("0=0&1", 2, "0.1 0.2"),
        ("0&1=0", 2, "1.0 2.0 3.0"),
        ("0&1|2", 3, "1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1"),
        (
            "0|1&2",
            3,
            "0.1.1 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        ("(0&1)|2", 3, "0.0.1 0.1.1 0.2.1 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1"),
        (
            "0|(1&2)",
            3,
            "0.1.1 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        ("0&1&2", 3, "1.1.1 1.2.1 2.1.1 2.2.1"),
        (
            "0 | 1 | 2",
            3,
            "0.0.1 0.1.0 0.1.1 0.2.0 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        (
            "00|1|02",
            3,
            "0.0.1 0.1.0 0.1.1 0.2.0 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        (
            "0|2",
            3,
            "0.0.1 0.1.1 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        (
            "(0)|1|2",
            3,
            "0.0.1 0.1.0 0.1.1 0.2.0 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        (
            "((0))|1|2",
            3,
            "0.0.1 0.1.0 0.1.1 0.2.0 0.2.1 1.0.0 1.0.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        (
            "(((0|1)>1)|2)>1",
            3,
            "0.2.0 0.2.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.0 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
        ("(((0|1)>1)|2)>1,1", 3, "0.2.1 1.1.1 1.2.1 2.0.1 2.1.1 2.2.1"),
        ("(((0|1)>1)|2)>1,2", 3, ""),
        ("(((0|1)>1)&2)>0,1", 3, "0.2.1 1.1.1 1.2.1 2.0.1 2.1.1 2.2.1"),
        ("(((0|1)>1)&2)>0,2", 3, ""),
        ("((0=0)&1&2)=2", 3, "0.1.1"),
        ("(0=0)&1&2", 3, "0.1.1 0.2.1"),
        ("((0>1)|1|2)>0,3", 3, "2.1.1 2.2.1"),
        ("((0|1)|2)>0,3", 3, "1.1.1 1.2.1 2.1.1 2.2.1"),
        ("((0&1)|2)>0,3", 3, "1.1.1 1.2.1 2.1.1 2.2.1"),
        ("((0>5)|1|2)>0,2", 3, "0.1.1 0.2.1 1.1.1 1.2.1 2.1.1 2.2.1"),
        ("((0>5)|1|2)>0,3", 3, ""),
        ("((0<5)|1|2)>0,3", 3, "0.1.1 0.2.1 1.1.1 1.2.1 2.1.1 2.2.1"),
        ("((0=0)|1|2)>0,2", 3, "0.0.1 0.1.0 0.1.1 0.2.0 0.2.1 1.1.1 1.2.1 2.1.1 2.2.1"),
        ("(((0|1)>0)|2)>0,2", 3, ""),
        ("(((0|1)>0)|2)=3", 3, "0.2.1 1.1.1 1.2.0 2.0.1 2.1.0"),
        ("(((0|1)=0)|2)=1", 3, "0.0.1 0.1.1 0.2.1 1.0.1 1.1.1 1.2.1 2.0.1 2.1.1 2.2.1"),
        ("((0|1)=0)&2", 3, "0.0.1"),
        ("(((0|1)>0)&2)=3", 3, "0.2.1 1.1.1 2.0.1"),
        ("(0|1|2)>3,3", 3, "1.2.1 2.1.1 2.2.1"),
        ("(0|1|2)=3,2", 3, "0.2.1 1.1.1 1.2.0 2.0.1 2.1.0"),
        (
            "((0|1)&(1|2))>2",
            3,
            "0.1.1 0.2.0 0.2.1 1.1.0 1.1.1 1.2.0 1.2.1 2.0.1 2.1.0 2.1.1 2.2.0 2.2.1",
        ),
    ];

    fn grid(n: usize) -> Vec<Vec<u32>> {
        match n {
            1 => (0..=5).map(|k| vec![k]).collect(),
            2 => (0..=3)
                .flat_map(|k| (0..=2).map(move |z| vec![k, z]))
                .collect(),
            _ => (0..=2)
                .flat_map(|k| (0..=2).flat_map(move |z| (0..=1).map(move |q| vec![k, z, q])))
                .collect(),
        }
    }

    #[test]
    fn clamscan_observations() {
        for &(text, n, hits) in OBSERVED {
            let e = parse(text).unwrap_or_else(|m| panic!("{m}"));
            assert_eq!(e.max_subsig() as usize + 1, n, "{text}");
            let hits: Vec<Vec<u32>> = hits
                .split_whitespace()
                .map(|h| h.split('.').map(|c| c.parse().unwrap()).collect())
                .collect();
            for counts in grid(n) {
                assert_eq!(
                    e.eval(&counts),
                    hits.contains(&counts),
                    "`{text}` over counts {counts:?}"
                );
            }
        }
    }
}
