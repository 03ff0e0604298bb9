//! clamscan 1.4.6 as the oracle: a few hundred generated HTML pages, text files and typing probes are
//! scanned in one `clamscan --leave-temps` run; its `nocomment.html`, `notags.html` and text
//! `clamav-*.tmp` files must equal this module's output byte for byte, and which files got them must
//! agree with [`is_html`] / [`is_text`].

use super::super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Deterministic pseudo-random numbers (xorshift64), so a failure reproduces with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn cased(&mut self, word: &str) -> String {
        match self.below(3) {
            0 => word.to_string(),
            1 => word.to_ascii_uppercase(),
            _ => word
                .chars()
                .map(|c| {
                    if self.chance(50) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect(),
        }
    }
}

const WORD_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?()-/";
const REFERENCES: &[&str] = &[
    "&lt;", "&gt;", "&amp;", "&quot;", "&nbsp;", "&copy;", "&#65;", "&#x42;", "&#233;", "&#8364;",
    "&euro;", "&AElig;", "&Lt;", "&bogus;", "&amp ", "&#66 ", "&#0;", "& ",
];
const SPACES: &[&str] = &[" ", "  ", "\n", "\t", "\r\n", " \n ", "\x0c"];
const TAGS: &[&str] = &["p", "b", "div", "span", "a", "img", "td", "font", "br", "i"];
const ATTRS: &[&str] = &["href", "src", "class", "title", "id", "alt"];

fn word(r: &mut Rng) -> String {
    (0..1 + r.below(8))
        .map(|_| r.pick(WORD_CHARS) as char)
        .collect()
}

/// A value with at most one space, inside: values starting or ending with white space or holding two
/// spaces meet rules not (fully) modelled (tests/ORACLE.md §10).
fn attribute_value(r: &mut Rng) -> String {
    let mut v = word(r);
    let mut spaced = false;
    for _ in 0..r.below(3) {
        match r.below(4) {
            // Only references ended by `;`: an unended one at a link's end is not modelled.
            0 => {
                v.push_str(r.clone_pick(&["&lt;", "&amp;", "&#65;", "&#8364;", "&euro;", "&nbsp;"]))
            }
            1 if !spaced => {
                v.push_str(" x");
                spaced = true;
            }
            _ => v.push_str(&word(r)),
        }
    }
    v
}

fn tag(r: &mut Rng) -> String {
    let name = r.cased_pick(TAGS);
    let mut t = format!("<{}{name}", if r.chance(30) { "/" } else { "" });
    for _ in 0..r.below(4) {
        t.push_str(if r.chance(80) { " " } else { "  " });
        t.push_str(&r.cased_pick(ATTRS));
        if r.chance(85) {
            let eq = r.pick(&["=", " = ", "= ", " ="]);
            t.push_str(eq);
            let v = attribute_value(r);
            match r.below(3) {
                0 => t.push_str(&format!("\"{v}\"")),
                1 => t.push_str(&format!("'{v}'")),
                _ => t.push_str(&word(r)),
            }
        }
    }
    if r.chance(15) {
        t.push_str(r.pick(&[" ", " /", "/"]));
    }
    t.push('>');
    t
}

impl Rng {
    fn clone_pick(&mut self, from: &[&'static str]) -> &'static str {
        from[self.below(from.len())]
    }
    fn cased_pick(&mut self, from: &[&'static str]) -> String {
        let w = self.clone_pick(from);
        self.cased(w)
    }
}

fn html_page(r: &mut Rng) -> Vec<u8> {
    let mut p: Vec<u8> = Vec::new();
    if r.chance(20) {
        p.extend_from_slice(word(r).as_bytes());
    }
    p.extend_from_slice(r.pick(&[&b"<html>"[..], b"<HTML>", b"<Html>"]));
    for _ in 0..5 + r.below(40) {
        let piece: Vec<u8> = match r.below(20) {
            0..=5 => word(r).into_bytes(),
            6..=9 => r.pick(SPACES).as_bytes().to_vec(),
            10..=12 => tag(r).into_bytes(),
            13 => format!("<!--{}{}-->", r.pick(SPACES), word(r)).into_bytes(),
            14 => b"<!DOCTYPE html>".to_vec(),
            15 | 16 => r.pick(REFERENCES).as_bytes().to_vec(),
            17 => {
                let name = if r.chance(50) { "script" } else { "style" };
                format!(
                    "<{}>{}{}{}</{}>",
                    r.cased(name),
                    word(r),
                    r.pick(SPACES),
                    word(r),
                    r.cased(name)
                )
                .into_bytes()
            }
            18 => r
                .pick(&[&b"\x01"[..], b"\xe9", b"\x00", b"\x7f", b"\xc3\xa9"])
                .to_vec(),
            _ => format!("</{}>", r.cased_pick(TAGS)).into_bytes(),
        };
        p.extend_from_slice(&piece);
    }
    p
}

fn text_file(r: &mut Rng) -> Vec<u8> {
    let mut p = b"plain text ".to_vec();
    for _ in 0..5 + r.below(60) {
        match r.below(12) {
            0..=6 => p.extend_from_slice(word(r).as_bytes()),
            7..=9 => p.extend_from_slice(r.pick(SPACES).as_bytes()),
            10 => p.extend_from_slice(r.pick(&[&b"\x01"[..], b"\xe9", b"\x7f", b"\x0b", b"\x1f"])),
            _ => p.extend_from_slice(r.pick(&[&b"&lt;"[..], b"\"q\"", b"#", b"{}", b"[x]"])),
        }
    }
    p
}

/// Short files probing the HTML typing: a marker in some spelling after text or binary bytes.
fn typing_probe(r: &mut Rng) -> Vec<u8> {
    let mut p: Vec<u8> = match r.below(3) {
        0 => b"words before ".to_vec(),
        1 => vec![0, 0, 0, 0, 0, 0, 0, 0, 0x90, 0x91],
        _ => b"text \x01 here ".to_vec(),
    };
    let marker = match r.below(4) {
        0 => format!("<{}>", r.cased_pick(&["html", "head", "body", "title"])),
        1 => format!(
            "<{}",
            r.cased_pick(&["img", "script", "iframe", "object", "table", "meta", "div"])
        ),
        2 => format!("<{} x {}", r.cased("a"), r.cased("href")),
        _ => format!("<{} lang=en>", r.cased("html")),
    };
    p.extend_from_slice(marker.as_bytes());
    p.extend_from_slice(b" after words\n");
    p
}

/// The files clamscan left for `name` under `temps`: (nocomment, notags, text form).
type Left = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn left_files(temps: &Path, name: &str) -> Left {
    let mut found: Left = (None, None, None);
    let Ok(top) = std::fs::read_dir(temps) else {
        return found;
    };
    let marker = format!("-{name}.");
    for dir in top.flatten() {
        if !dir.file_name().to_string_lossy().contains(&marker) {
            continue;
        }
        let mut stack = vec![dir.path()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let f = e.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(&p).ok();
                if f == "nocomment.html" {
                    found.0 = bytes;
                } else if f == "notags.html" {
                    found.1 = bytes;
                } else if f.starts_with("clamav-")
                    && f.ends_with(".tmp")
                    && d.ends_with_dir(&marker)
                {
                    found.2 = bytes;
                }
            }
        }
    }
    found
}

trait EndsWithDir {
    fn ends_with_dir(&self, marker: &str) -> bool;
}

impl EndsWithDir for PathBuf {
    /// The file's own temporary directory (not one of a member's, such as a page's `javascript`).
    fn ends_with_dir(&self, marker: &str) -> bool {
        self.file_name()
            .is_some_and(|n| n.to_string_lossy().contains(&marker[1..]))
    }
}

fn clamscan_present() -> bool {
    let present = Command::new("clamscan")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "clamscan is required under CI (cargo xtask setup installs clamav)"
        );
        eprintln!("SKIP: clamscan not installed");
    }
    present
}

#[test]
fn clamscan_oracle() {
    if !clamscan_present() {
        return;
    }
    let seed = std::env::var("NORMALIZE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_u64);
    let mut r = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let temps = dir.path().join("temps");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&temps).unwrap();
    let db = dir.path().join("none.ndb");
    std::fs::write(&db, "None.Sig:3:*:ffeeddccbbaa9988\n").unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..300 {
        cases.push((format!("h{i:03}.html"), html_page(&mut r)));
    }
    for i in 0..150 {
        cases.push((format!("t{i:03}.txt"), text_file(&mut r)));
    }
    for i in 0..150 {
        cases.push((format!("y{i:03}.bin"), typing_probe(&mut r)));
    }
    // UTF-16LE pages (a mark, then each byte of a generated page as one code unit): folded, then
    // normalised.
    for i in 0..30 {
        let page = html_page(&mut r);
        let mut wide = vec![0xFF, 0xFE];
        wide.extend(page.iter().flat_map(|&b| [b, 0]));
        cases.push((format!("w{i:03}.html"), wide));
    }
    // clamscan skips a file whose content it has scanned already (its clean cache): keep one of each.
    let mut seen = std::collections::HashSet::new();
    cases.retain(|(_, data)| seen.insert(data.clone()));
    for (name, data) in &cases {
        std::fs::write(files.join(name), data).unwrap();
    }
    let out = Command::new("clamscan")
        .arg("--no-summary")
        .arg("-d")
        .arg(&db)
        .arg("--leave-temps")
        .arg("--tempdir")
        .arg(&temps)
        .arg("-r")
        .arg(&files)
        .output()
        .expect("clamscan runs");
    assert!(
        out.status.code() == Some(0),
        "clamscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = |b: &[u8]| b.escape_ascii().to_string();
    let mut failures = Vec::new();
    for (name, data) in &cases {
        let (nocomment, notags, text_form) = left_files(&temps, name);
        let html_here = html_input(data);
        if html_here.is_some() != nocomment.is_some() {
            failures.push(format!(
                "{name} {:?}: clamscan HTML {}, is_html {}",
                show(data),
                nocomment.is_some(),
                html_here.is_some()
            ));
            continue;
        }
        if let (Some(input), Some(nc), Some(nt)) = (&html_here, &nocomment, &notags) {
            let f = html::normalize(input, usize::MAX);
            // Bytes 0x80.. in notags follow a rule not modelled (tests/ORACLE.md §10): compare
            // nocomment only for such pages.
            let high = data.iter().any(|&b| b >= 0x80);
            if &f.nocomment != nc || (!high && &f.notags != nt) {
                failures.push(format!(
                    "{name} {:?}\n  clamscan  {:?}\n            {:?}\n  normalize {:?}\n            {:?}",
                    show(data),
                    show(nc),
                    show(nt),
                    show(&f.nocomment),
                    show(&f.notags)
                ));
            }
            continue;
        }
        if is_text(data) != text_form.is_some() {
            failures.push(format!(
                "{name} {:?}: clamscan text {}, is_text {}",
                show(data),
                text_form.is_some(),
                is_text(data)
            ));
            continue;
        }
        if let Some(t) = text_form {
            let mine = text::normalize(data, usize::MAX);
            if mine != t {
                failures.push(format!(
                    "{name} {:?}\n  clamscan  {:?}\n  normalize {:?}",
                    show(data),
                    show(&t),
                    show(&mine)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(12)].join("\n")
    );
}
