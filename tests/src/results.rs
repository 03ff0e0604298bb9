//! Parsing of clamscan-style result lines (`PATH: NAME FOUND`, `PATH: OK`, `PATH: Empty file`, ...).

use std::collections::BTreeMap;
use std::fmt;

/// The verdict printed for one path. With `-z` a path can have several `FOUND` lines; they are
/// collected in printed order (clamscan repeats the list for binary data, see ORACLE.md §2b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `PATH: OK`
    Clean,
    /// `PATH: Empty file`
    Empty,
    /// One or more `PATH: NAME FOUND` lines, names in printed order.
    Found(Vec<String>),
    /// Anything else after `PATH: ` (e.g. an error message), verbatim.
    Other(String),
}

impl Verdict {
    /// Is this a detection?
    pub fn is_found(&self) -> bool {
        matches!(self, Verdict::Found(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Clean => write!(f, "OK"),
            Verdict::Empty => write!(f, "Empty file"),
            Verdict::Found(names) => write!(f, "FOUND [{}]", names.join(", ")),
            Verdict::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Parse one output line into `(path, verdict)`. Lines that do not look like results (summary,
/// blank lines, `LibClamAV ...` messages, `ERROR: ...`) give `None`.
pub fn parse_line(line: &str) -> Option<(String, Verdict)> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty()
        || line.starts_with("LibClamAV ")
        || line.starts_with("ERROR: ")
        || line.starts_with("WARNING: ")
    {
        return None;
    }
    // The path may itself contain ": ", the verdict never does, so split at the last one.
    let idx = line.rfind(": ")?;
    let (path, rest) = (&line[..idx], &line[idx + 2..]);
    if path.is_empty() {
        return None;
    }
    let v = if rest == "OK" {
        Verdict::Clean
    } else if rest == "Empty file" {
        Verdict::Empty
    } else if let Some(name) = rest.strip_suffix(" FOUND") {
        Verdict::Found(vec![name.to_string()])
    } else {
        Verdict::Other(rest.to_string())
    };
    Some((path.to_string(), v))
}

/// Parse a whole stdout into path -> verdict. Repeated `FOUND` lines for one path are appended in
/// order. Summary lines (`----------- SCAN SUMMARY`, `Known viruses: N`, ...) are skipped.
pub fn parse_output(stdout: &str) -> BTreeMap<String, Verdict> {
    let mut map: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut in_summary = false;
    for line in stdout.lines() {
        if line.starts_with("----------- SCAN SUMMARY") {
            in_summary = true;
        }
        if in_summary {
            continue;
        }
        let Some((path, v)) = parse_line(line) else {
            continue;
        };
        match (map.get_mut(&path), v) {
            (Some(Verdict::Found(names)), Verdict::Found(more)) => names.extend(more),
            (Some(old), v) => {
                // A second non-FOUND line for one path is unexpected: keep both visible.
                *old = Verdict::Other(format!("{old} + {v}"));
            }
            (None, v) => {
                map.insert(path, v);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let out = "a/b: X.UNOFFICIAL FOUND\na/b: Y FOUND\nc: OK\nd: Empty file\nLibClamAV Error: x\n\n----------- SCAN SUMMARY -----------\nKnown viruses: 3\n";
        let m = parse_output(out);
        assert_eq!(
            m["a/b"],
            Verdict::Found(vec!["X.UNOFFICIAL".into(), "Y".into()])
        );
        assert_eq!(m["c"], Verdict::Clean);
        assert_eq!(m["d"], Verdict::Empty);
        assert_eq!(m.len(), 3);
        assert_eq!(
            parse_line("x: y: OK"),
            Some(("x: y".into(), Verdict::Clean))
        );
    }
}

/// clamscan's `-z` list with each name kept once, at its first place. clamscan repeats the whole list for
/// files it scans twice (binary data, ORACLE.md §2b); `sensor scan -z` reports each signature once, on
/// purpose: a repeated name tells an admin nothing and breaks scripts that count detections.
pub fn dedup_names(map: BTreeMap<String, Verdict>) -> BTreeMap<String, Verdict> {
    map.into_iter()
        .map(|(p, v)| match v {
            Verdict::Found(names) => {
                let mut seen = Vec::new();
                for n in names {
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                }
                (p, Verdict::Found(seen))
            }
            v => (p, v),
        })
        .collect()
}

#[cfg(test)]
mod dedup_tests {
    use super::*;

    #[test]
    fn keeps_first_places() {
        let m = parse_output("/a: A FOUND\n/a: B FOUND\n/a: A FOUND\n/a: B FOUND\n/b: OK\n");
        let d = dedup_names(m);
        assert_eq!(d["/a"], Verdict::Found(vec!["A".into(), "B".into()]));
        assert_eq!(d["/b"], Verdict::Clean);
    }
}
