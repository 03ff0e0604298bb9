//! Writes the cdiff script that turns one unpacked database into another (what `sigtool --diff` does for
//! ClamAV's mirrors), for tests and for a mirror that publishes its own patches.
//!
//! The script uses only what the applier (`script.rs`) runs: a changed file keeps its common first and last
//! lines, `XCHG`es the lines between, `DEL`etes the surplus and `ADD`s the rest at its end (the command set
//! cannot insert in the middle, so an insertion rewrites the lines after it). Prefixes are the original
//! line's first word cut to 16 bytes, as sigtool writes them (UPDATE.md §1.2). A line whose prefix would be
//! empty (an empty line, a leading space) cannot be addressed, so such a file is removed and written anew.

use super::script::{self, split_lines, Tree};
use std::path::Path;

/// sigtool cuts a prefix to this many bytes (UPDATE.md §1.2).
const PREFIX_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(
        "{0}: a script cannot write it (its last line has no newline, or its name is not plain)"
    )]
    Unrepresentable(String),
    #[error("{0}")]
    Read(#[from] script::ScriptError),
}

/// The script that turns `old` into `new`. The `.info` manifest comes first, as in ClamAV's cdiffs.
pub fn diff(old: &Tree, new: &Tree) -> Result<Vec<u8>, DiffError> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort_by_key(|n| (!n.ends_with(".info"), n.as_str()));
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        if before == after {
            continue;
        }
        if script::file_name(name.as_bytes()).is_err() {
            return Err(DiffError::Unrepresentable(name.clone()));
        }
        if let Some(after) = after {
            if !after.is_empty() && !after.ends_with(b"\n") {
                return Err(DiffError::Unrepresentable(name.clone()));
            }
        }
        match (before, after) {
            (Some(_), None) => line(&mut out, &[b"UNLINK ", name.as_bytes()]),
            (None, Some(after)) => write_whole(&mut out, name, after),
            (Some(before), Some(after)) => edit(&mut out, name, before, after),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// [`diff`] of two flat database directories.
pub fn diff_dirs(old: &Path, new: &Path) -> Result<Vec<u8>, DiffError> {
    diff(&script::read_dir(old)?, &script::read_dir(new)?)
}

fn edit(out: &mut Vec<u8>, name: &str, before: &[u8], after: &[u8]) {
    let (old, new) = (split_lines(before), split_lines(after));
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    // With more new lines than old ones in the middle, the lines after them move down: rewrite them too.
    let (old_end, new_end) = if new.len() - head - tail > old.len() - head - tail {
        (old.len(), new.len())
    } else {
        (old.len() - tail, new.len() - tail)
    };
    let touched = &old[head..old_end];
    if touched.iter().any(|l| prefix(l).is_empty()) {
        line(out, &[b"UNLINK ", name.as_bytes()]);
        write_whole(out, name, after);
        return;
    }
    line(out, &[b"OPEN ", name.as_bytes()]);
    for (i, l) in touched.iter().enumerate() {
        let n = (head + i + 1).to_string();
        match new.get(head + i).filter(|_| head + i < new_end) {
            Some(repl) => line(out, &[b"XCHG ", n.as_bytes(), b" ", prefix(l), b" ", repl]),
            None => line(out, &[b"DEL ", n.as_bytes(), b" ", prefix(l)]),
        }
    }
    for l in new.iter().take(new_end).skip(head + touched.len()) {
        line(out, &[b"ADD ", l]);
    }
    line(out, &[b"CLOSE"]);
}

fn write_whole(out: &mut Vec<u8>, name: &str, after: &[u8]) {
    line(out, &[b"OPEN ", name.as_bytes()]);
    for l in split_lines(after) {
        line(out, &[b"ADD ", &l]);
    }
    line(out, &[b"CLOSE"]);
}

/// The line's first word, cut to 16 bytes.
fn prefix(l: &[u8]) -> &[u8] {
    let word = l.split(|&b| b == b' ').next().unwrap_or_default();
    &word[..word.len().min(PREFIX_LEN)]
}

fn line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.push(b'\n');
}
