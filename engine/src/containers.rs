//! Signatures about where a file sits and what it is taken for: the `Container:`/`Intermediates:`
//! conditions of logical signatures, their `HandlerType:` (the type a matching file is scanned again as) and
//! the `.cdb` container metadata signatures, from the build to the scan.
//!
//! Owns: keeping both in the database image (one text section, re-read when the database opens, the
//! name regexes compiled then), deciding whether a logical signature's conditions hold for a chain of
//! containers, and which `.cdb` signatures a member's entry matches. Never: types files (`unpack::cltype`
//! names them), walks containers (`scan::deep` keeps the chain), or parses lines (`db::ldb`, `db::cdb`).
//!
//! As clamscan 1.4.6 (tests/ORACLE.md §13g): a file's containers are the types of the files it was
//! unpacked from, the scanned file itself first; `Container:T` is the last of them (`CL_TYPE_ANY`: the
//! file is in none); `Intermediates:A>B` the last ones, `CL_TYPE_ANY` standing for any type but not for a
//! missing layer. A `.cdb` line is matched against each member's entry before the member is scanned,
//! the name regex searched (not anchored, case-sensitive) in the member's path inside its container.

use crate::db::cdb::{ContainerSig, Range};
use crate::db::ldb::Containers;
use crate::db::{self, Parsed};
use crate::image::{ids, Image, ImageBuilder, ImageError};
use crate::unpack::{cltype, MemberMeta};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;

/// One container of a scanned file: its `CL_TYPE` name and size in bytes.
pub(crate) type Layer = (&'static str, u64);

/// The most a name regex may compile to: a `.cdb` line must not cost a scanner more than this.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a `.cdb` name regex; an error is a load error, as clamscan's "Can't compile regular
/// expression". ClamAV's regexes are POSIX extended; the `regex` crate reads the common subset alike.
pub(crate) fn compile_regex(text: &str) -> Result<Regex, String> {
    RegexBuilder::new(text)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("cannot compile file name regex `{text}`: {e}"))
}

/// What the build collected: each line of the section, and the name ids to shift when names move.
#[derive(Default)]
pub(crate) struct ContainersBuilder {
    /// `(lsig, direct, chain)` for each logical signature with conditions.
    lsigs: Vec<(u32, Containers)>,
    /// `(name id, signature)` for each `.cdb` line, in load order.
    cdb: Vec<(u32, ContainerSig)>,
    /// `(lsig, CL_TYPE)` for each logical signature with a `HandlerType:`.
    handlers: Vec<(u32, &'static str)>,
}

impl ContainersBuilder {
    pub(crate) fn add_logical(&mut self, lsig: u32, c: Containers) {
        self.lsigs.push((lsig, c));
    }

    pub(crate) fn add_handler(&mut self, lsig: u32, ty: &'static str) {
        self.handlers.push((lsig, ty));
    }

    /// Checks the regex (a bad one fails the load) and keeps the signature under name id `name`.
    pub(crate) fn add_cdb(&mut self, name: u32, sig: ContainerSig) -> Result<(), String> {
        if let Some(r) = &sig.name_regex {
            compile_regex(r)?;
        }
        self.cdb.push((name, sig));
        Ok(())
    }

    pub(crate) fn shift_names(&mut self, shift: u32) {
        for (name, _) in &mut self.cdb {
            *name += shift;
        }
    }

    /// The section: `L\t<lsig>\t<Container or ->\t<Intermediates or ->`, `H\t<lsig>\t<HandlerType>` and
    /// `C\t<name id>\t<cdb line with the name left empty>` lines.
    pub(crate) fn write(self, img: &mut ImageBuilder) {
        let mut text = String::new();
        for (lsig, c) in &self.lsigs {
            let chain = c.chain.as_ref().map(|v| v.join(">"));
            text.push_str(&format!(
                "L\t{lsig}\t{}\t{}\n",
                c.direct.unwrap_or("-"),
                chain.as_deref().unwrap_or("-")
            ));
        }
        for (lsig, ty) in &self.handlers {
            text.push_str(&format!("H\t{lsig}\t{ty}\n"));
        }
        for (name, s) in &self.cdb {
            let range = |r: Option<Range>| r.map_or("*".to_string(), |(a, b)| format!("{a}-{b}"));
            let encrypted = s.encrypted.map_or("*", |e| if e { "1" } else { "0" });
            text.push_str(&format!(
                "C\t{name}\tn:{}:{}:{}:{}:{}:{}:{}:*:*\n",
                s.container.unwrap_or("*"),
                range(s.container_size),
                s.name_regex.as_deref().unwrap_or("*"),
                range(s.stored_size),
                range(s.size),
                encrypted,
                range(s.position),
            ));
        }
        img.put(ids::CONTAINERS, text.into_bytes());
    }
}

/// One `.cdb` signature, ready to match.
struct CdbRule {
    name: u32,
    sig: ContainerSig,
    regex: Option<Regex>,
}

/// The database's container conditions and container metadata signatures.
#[derive(Default)]
pub(crate) struct ContainerRules {
    lsigs: HashMap<u32, Containers>,
    handlers: HashMap<u32, &'static str>,
    cdb: Vec<CdbRule>,
}

fn in_range(v: u64, r: Option<Range>) -> bool {
    r.is_none_or(|(a, b)| a <= v && v <= b)
}

impl ContainerRules {
    /// Reads the section back; an image without it (written before this section existed, when both kinds
    /// were skipped at load) has none.
    pub(crate) fn open(image: &Image) -> Result<ContainerRules, ImageError> {
        if !image.has(ids::CONTAINERS) {
            return Ok(ContainerRules::default());
        }
        let text = image.get(image.arr::<u8>(ids::CONTAINERS)?);
        let bad = |what: &str| ImageError::Corrupt(format!("container rules: {what}"));
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
        let mut rules = ContainerRules::default();
        let ty = |t: &str| match t {
            "-" => Ok(None),
            t => cltype::known(t)
                .map(Some)
                .ok_or_else(|| bad("unknown type")),
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["L", lsig, direct, chain] => {
                    let lsig = lsig.parse().map_err(|_| bad("logical index"))?;
                    let chain = match *chain {
                        "-" => None,
                        c => Some(
                            c.split('>')
                                .map(|t| ty(t)?.ok_or_else(|| bad("empty type")))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                    };
                    let c = Containers {
                        direct: ty(direct)?,
                        chain,
                    };
                    rules.lsigs.insert(lsig, c);
                }
                ["H", lsig, ty] => {
                    let lsig = lsig.parse().map_err(|_| bad("logical index"))?;
                    let ty = cltype::known(ty).ok_or_else(|| bad("unknown type"))?;
                    rules.handlers.insert(lsig, ty);
                }
                ["C", name, line] => {
                    let name = name.parse().map_err(|_| bad("name id"))?;
                    let Ok(Parsed::Sig(sig)) =
                        db::cdb::parse_line(line, crate::FUNCTIONALITY_LEVEL)
                    else {
                        return Err(bad("container metadata signature"));
                    };
                    let regex = match &sig.name_regex {
                        Some(r) => Some(compile_regex(r).map_err(|e| bad(&e))?),
                        None => None,
                    };
                    rules.cdb.push(CdbRule { name, sig, regex });
                }
                _ => return Err(bad("line")),
            }
        }
        Ok(rules)
    }

    /// Whether logical signature `lsig` may match a file inside `chain` (its containers, outermost
    /// first): true for signatures without conditions.
    pub(crate) fn logical_holds(&self, lsig: u32, chain: &[Layer]) -> bool {
        if self.lsigs.is_empty() {
            return true;
        }
        self.lsigs.get(&lsig).is_none_or(|c| holds(c, chain))
    }

    /// The type logical signature `lsig` hands a matching file to (`HandlerType:`), if it has one.
    pub(crate) fn handler(&self, lsig: u32) -> Option<&'static str> {
        if self.handlers.is_empty() {
            return None;
        }
        self.handlers.get(&lsig).copied()
    }

    /// Whether there are `.cdb` signatures at all (the walk skips the work otherwise).
    pub(crate) fn has_cdb(&self) -> bool {
        !self.cdb.is_empty()
    }

    /// The name ids of the `.cdb` signatures that `meta`, an entry of `container`, matches, in clamscan's
    /// order: the last loaded first.
    pub(crate) fn cdb_matches(&self, container: Layer, meta: &MemberMeta) -> Vec<u32> {
        self.cdb
            .iter()
            .rev()
            .filter(|r| {
                let s = &r.sig;
                s.container.is_none_or(|t| t == container.0)
                    && in_range(container.1, s.container_size)
                    && in_range(meta.stored, s.stored_size)
                    && in_range(meta.size, s.size)
                    && s.encrypted.is_none_or(|e| e == meta.encrypted)
                    && in_range(meta.position, s.position)
                    && r.regex.as_ref().is_none_or(|re| re.is_match(meta.name))
            })
            .map(|r| r.name)
            .collect()
    }
}

/// Whether `c` holds for a file whose containers are `chain`, outermost first.
pub(crate) fn holds(c: &Containers, chain: &[Layer]) -> bool {
    if let Some(direct) = c.direct {
        let ok = if direct == cltype::ANY {
            chain.is_empty()
        } else {
            chain.last().is_some_and(|l| l.0 == direct)
        };
        if !ok {
            return false;
        }
    }
    if let Some(want) = &c.chain {
        let Some(start) = chain.len().checked_sub(want.len()) else {
            return false;
        };
        return want
            .iter()
            .zip(&chain[start..])
            .all(|(w, l)| *w == cltype::ANY || *w == l.0);
    }
    true
}

#[cfg(test)]
mod tests;
