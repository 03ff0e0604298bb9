//! Runs a cdiff script (UPDATE.md §1.2) against an unpacked database: `OPEN`, `ADD`, `DEL`, `XCHG`,
//! `CLOSE`, `MOVE`, `UNLINK`.
//!
//! Line numbers always name lines of the file as it was when opened; `DEL` and `XCHG` check that the line
//! starts with the given prefix; `ADD`s go after the original lines at `CLOSE`. Edits are collected in an
//! overlay and committed only when the whole script succeeded, so a failing script changes nothing.
//! File names are plain names inside the database directory: `/`, `..` and the like are refused.

use std::collections::BTreeMap;
use std::path::Path;

/// An unpacked database: member name -> bytes.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// Files one database may hold, and bytes one file may grow to while a script runs.
const MAX_FILES: usize = super::payload::MAX_MEMBERS;
const MAX_FILE_BYTES: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("script line {line}: {what}")]
    Line { line: usize, what: String },
    #[error("script ends with {0} still open")]
    NotClosed(String),
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("{0}: not a plain file name inside the database directory")]
    BadName(String),
}

/// The file open between `OPEN` and `CLOSE`.
struct Open {
    name: String,
    /// The original content.
    text: Text,
    /// Replacement for original line n (1-based); `None` deletes it.
    edits: BTreeMap<usize, Option<Vec<u8>>>,
    added: Vec<Vec<u8>>,
}

/// What a successful [`apply`] replaced: each touched name with its content before (`None`: it did not
/// exist), so that a caller whose later checks fail can put the tree back.
#[derive(Debug, Default)]
pub struct Undo(BTreeMap<String, Option<Vec<u8>>>);

impl Undo {
    /// The names the script wrote or removed.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Puts `tree` back as it was before the script.
    pub fn revert(self, tree: &mut Tree) {
        for (name, before) in self.0 {
            match before {
                Some(bytes) => tree.insert(name, bytes),
                None => tree.remove(&name),
            };
        }
    }
}

/// Applies `script` to `tree`; on error `tree` is unchanged.
pub fn apply(script: &[u8], tree: &mut Tree) -> Result<Undo, ScriptError> {
    // name -> new content, or None for removed.
    let mut overlay: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut open: Option<Open> = None;
    let text = script.strip_suffix(b"\n").unwrap_or(script);
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let err = |what: String| ScriptError::Line { line, what };
        let (cmd, rest) = split_word(raw);
        let current =
            |name: &str, overlay: &BTreeMap<String, Option<Vec<u8>>>| -> Option<Vec<u8>> {
                match overlay.get(name) {
                    Some(v) => v.clone(),
                    None => tree.get(name).cloned(),
                }
            };
        match cmd {
            b"OPEN" => {
                let name = file_name(rest).map_err(|e| err(e.to_string()))?;
                if let Some(o) = &open {
                    return Err(err(format!("OPEN {name} while {} is still open", o.name)));
                }
                let text = Text::new(current(&name, &overlay).unwrap_or_default());
                open = Some(Open {
                    name,
                    text,
                    edits: BTreeMap::new(),
                    added: Vec::new(),
                });
            }
            b"ADD" => {
                let o = open
                    .as_mut()
                    .ok_or_else(|| err("ADD with no file open".into()))?;
                o.added.push(rest.to_vec());
            }
            b"DEL" | b"XCHG" => {
                let o = open
                    .as_mut()
                    .ok_or_else(|| err(format!("{} with no file open", show(cmd))))?;
                let (n, rest) = line_number(rest).map_err(&err)?;
                let (prefix, new) = split_word(rest);
                check_line(&o.name, &o.text, n, prefix).map_err(&err)?;
                if o.edits.keys().next_back().is_some_and(|&last| last >= n) {
                    return Err(err(format!(
                        "{}: line {n} edited after a later or the same line",
                        o.name
                    )));
                }
                let edit = (cmd == b"XCHG").then(|| new.to_vec());
                if cmd == b"DEL" && !new.is_empty() {
                    return Err(err(format!(
                        "{}: DEL takes a line and a prefix only",
                        o.name
                    )));
                }
                o.edits.insert(n, edit);
            }
            b"CLOSE" => {
                if !rest.is_empty() {
                    return Err(err("CLOSE takes no argument".into()));
                }
                let o = open
                    .take()
                    .ok_or_else(|| err("CLOSE with no file open".into()))?;
                let mut out = Vec::new();
                for n in 0..o.text.len() {
                    match o.edits.get(&(n + 1)) {
                        Some(None) => {}
                        Some(Some(new)) => push_line(&mut out, new),
                        None => push_line(&mut out, o.text.line(n)),
                    }
                }
                for l in &o.added {
                    push_line(&mut out, l);
                }
                if out.len() > MAX_FILE_BYTES {
                    return Err(err(format!(
                        "{} would grow past {MAX_FILE_BYTES} bytes",
                        o.name
                    )));
                }
                overlay.insert(o.name, Some(out));
            }
            b"UNLINK" => {
                let name = file_name(rest).map_err(|e| err(e.to_string()))?;
                if open.is_some() {
                    return Err(err(format!("UNLINK {name} while a file is open")));
                }
                if current(&name, &overlay).is_none() {
                    return Err(err(format!("UNLINK {name}: no such file")));
                }
                overlay.insert(name, None);
            }
            b"MOVE" => {
                if open.is_some() {
                    return Err(err("MOVE while a file is open".into()));
                }
                let (src, rest) = split_word(rest);
                let (dst, rest) = split_word(rest);
                let src = file_name(src).map_err(|e| err(e.to_string()))?;
                let dst = file_name(dst).map_err(|e| err(e.to_string()))?;
                let (start, rest) = line_number(rest).map_err(&err)?;
                let (start_prefix, rest) = split_word(rest);
                let (end, rest) = line_number(rest).map_err(&err)?;
                let (end_prefix, rest) = split_word(rest);
                if !rest.is_empty() {
                    return Err(err("MOVE has extra fields".into()));
                }
                if src == dst || start > end {
                    return Err(err(format!("MOVE {src} {dst} {start}..{end}: not a move")));
                }
                let from = current(&src, &overlay)
                    .ok_or_else(|| err(format!("MOVE from {src}: no such file")))?;
                let mut to = current(&dst, &overlay)
                    .ok_or_else(|| err(format!("MOVE into {dst}: no such file")))?;
                let lines = Text::new(from);
                check_line(&src, &lines, start, start_prefix).map_err(&err)?;
                check_line(&src, &lines, end, end_prefix).map_err(&err)?;
                let mut kept = Vec::new();
                if !to.is_empty() && !to.ends_with(b"\n") {
                    to.push(b'\n');
                }
                for n in 0..lines.len() {
                    if (start..=end).contains(&(n + 1)) {
                        push_line(&mut to, lines.line(n));
                    } else {
                        push_line(&mut kept, lines.line(n));
                    }
                }
                overlay.insert(src, Some(kept));
                overlay.insert(dst, Some(to));
            }
            b"" => return Err(err("empty line".into())),
            other => return Err(err(format!("unknown command {}", show(other)))),
        }
    }
    if let Some(o) = open {
        return Err(ScriptError::NotClosed(o.name));
    }
    let files = tree.len()
        + overlay
            .iter()
            .filter(|(k, v)| v.is_some() && !tree.contains_key(*k))
            .count();
    if files > MAX_FILES {
        return Err(ScriptError::Line {
            line: 0,
            what: format!("the database would hold more than {MAX_FILES} files"),
        });
    }
    let mut undo = Undo::default();
    for (name, content) in overlay {
        let before = match content {
            Some(bytes) => tree.insert(name.clone(), bytes),
            None => tree.remove(&name),
        };
        undo.0.insert(name, before);
    }
    Ok(undo)
}

/// Applies `script` to the database unpacked in `dir` (a flat directory of regular files). The script runs
/// on a copy in memory; only when it succeeded are the changed files written (each through a temporary
/// file and a rename) and the removed ones deleted.
pub fn apply_dir(script: &[u8], dir: &Path) -> Result<(), ScriptError> {
    let mut tree = read_dir(dir)?;
    let undo = apply(script, &mut tree)?;
    for (name, before) in &undo.0 {
        let path = dir.join(name);
        let io = |e: std::io::Error| ScriptError::Io(path.display().to_string(), e.to_string());
        match tree.get(name) {
            Some(bytes) if before.as_ref() != Some(bytes) => {
                let tmp = dir.join(format!(".{name}.cdiff-tmp"));
                std::fs::write(&tmp, bytes).map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)?;
            }
            Some(_) => {}
            None => std::fs::remove_file(&path).map_err(io)?,
        }
    }
    Ok(())
}

/// The regular files of a flat database directory.
pub fn read_dir(dir: &Path) -> Result<Tree, ScriptError> {
    let io = |p: &Path, e: std::io::Error| ScriptError::Io(p.display().to_string(), e.to_string());
    let mut tree = Tree::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        if !entry.file_type().map_err(|e| io(&path, e))?.is_file() {
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| ScriptError::BadName(n.to_string_lossy().into()))?;
        if tree.len() == MAX_FILES {
            return Err(ScriptError::Io(
                dir.display().to_string(),
                format!("more than {MAX_FILES} files"),
            ));
        }
        tree.insert(name, std::fs::read(&path).map_err(|e| io(&path, e))?);
    }
    Ok(tree)
}

/// A name a script may touch: non-empty, printable, without `/` or `\`, not `.`/`..`, at most 255 bytes.
pub(crate) fn file_name(raw: &[u8]) -> Result<String, ScriptError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw != b"."
        && raw != b".."
        && raw
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'/' && b != b'\\');
    if ok {
        Ok(shown)
    } else {
        Err(ScriptError::BadName(shown))
    }
}

fn check_line(name: &str, lines: &Text, n: usize, prefix: &[u8]) -> Result<(), String> {
    if prefix.is_empty() {
        return Err(format!("{name}: line {n} given without a prefix"));
    }
    let line = lines
        .get(n - 1)
        .ok_or_else(|| format!("{name}: line {n} is past the end ({} lines)", lines.len()))?;
    if !line.starts_with(prefix) {
        return Err(format!(
            "{name}: line {n} does not start with {:?}",
            String::from_utf8_lossy(prefix)
        ));
    }
    Ok(())
}

/// The first space-separated word and what follows the space after it.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

fn line_number(s: &[u8]) -> Result<(usize, &[u8]), String> {
    let (word, rest) = split_word(s);
    let n = std::str::from_utf8(word)
        .ok()
        .filter(|w| !w.is_empty() && w.len() <= 9 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{:?} is not a line number", String::from_utf8_lossy(word)))?;
    Ok((n, rest))
}

/// A file's bytes and where its lines are (without their `\n`; a last line without one still counts),
/// so that a large file is not copied line by line.
struct Text {
    bytes: Vec<u8>,
    lines: Vec<std::ops::Range<usize>>,
}

impl Text {
    fn new(bytes: Vec<u8>) -> Text {
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                lines.push(start..i);
                start = i + 1;
            }
        }
        if start < bytes.len() {
            lines.push(start..bytes.len());
        }
        Text { bytes, lines }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn line(&self, n: usize) -> &[u8] {
        &self.bytes[self.lines[n].clone()]
    }

    fn get(&self, n: usize) -> Option<&[u8]> {
        self.lines.get(n).map(|r| &self.bytes[r.clone()])
    }
}

/// Lines without their `\n`; a last line without one still counts.
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.push(b'\n');
}

fn show(cmd: &[u8]) -> String {
    String::from_utf8_lossy(&cmd[..cmd.len().min(40)]).into_owned()
}
