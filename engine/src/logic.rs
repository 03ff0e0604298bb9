//! Logical expressions of `.ldb` signatures and their evaluation over per-subsignature match counts.
//! OWNED BY: ldb/logic work (H3). Stub.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Sub(u32),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `expr=X`, `expr>X`, `expr<X`, with `,Y`: at least Y distinct subsignatures of `expr` matched.
    Count {
        expr: Box<Expr>,
        op: CmpOp,
        n: u32,
        distinct: Option<u32>,
    },
}

pub fn parse(s: &str) -> Result<Expr, String> {
    Err(format!("logic parser not implemented: {s}"))
}

impl Expr {
    /// `counts[i]` is how many times subsignature `i` matched.
    pub fn eval(&self, counts: &[u32]) -> bool {
        let _ = counts;
        false
    }
    /// The highest subsignature index the expression names.
    pub fn max_subsig(&self) -> u32 {
        0
    }
}
