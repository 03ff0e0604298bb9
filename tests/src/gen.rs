//! Deterministic generation of a signature database + a file corpus with expected verdicts.
//!
//! `generate(out_dir, seed, counts)` writes
//! * `out_dir/db/`: `gen.hdb`, `gen.hsb`, `gen.ndb`, `gen.ldb`, `gen.fp`, `gen.sfp`, `gen.ign2`
//! * `out_dir/data/`: `pos/` (exactly one signature matches), `clean/` (nothing matches),
//!   `near/` (almost matches one signature: must be clean), `multi/` (several signatures match,
//!   pins the reporting order), `allow/` (would match, but allowlisted or ignored), `big/` (1-4 MB),
//!   `tiny/` (1-9 bytes)
//!
//! and returns a [`Manifest`] with the expected verdict for each file.
//!
//! Collision-freedom by construction (see ORACLE.md §7):
//! * every file starts with 8 NUL bytes (clamscan then types it as "binary data", no magic);
//! * filler (and every byte a wildcard is concretised to) is in 0x80..=0xFF;
//! * every signature (every ldb subsignature) starts with a unique 4-byte id `7F a b c`
//!   (a,b,c printable non-letters); 0x7F appears nowhere else, so a signature can only match
//!   where it was planted. Other literal bytes are 0x01..=0x1F (letters for ::i/::w/::f).

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// splitmix64: tiny, deterministic, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "{lo} > {hi}");
        lo + self.below((hi - lo + 1) as u64) as usize
    }
    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn filler_byte(&mut self) -> u8 {
        0x80 | (self.next_u64() as u8 & 0x7f)
    }
    pub fn filler(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let x = self.next_u64().to_le_bytes();
            let take = (n - v.len()).min(8);
            v.extend(x[..take].iter().map(|b| b | 0x80));
        }
        v
    }
    /// `n` bytes of every value (binary data with no structure).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// A literal byte for signatures: 0x01..=0x1F.
    pub fn low_byte(&mut self) -> u8 {
        self.range(1, 0x1f) as u8
    }
    pub fn low_bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.low_byte()).collect()
    }
    pub fn letters(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'a' + self.below(26) as u8).collect()
    }
}

/// Fixed file header: clamscan types files starting with 8 NULs as binary data.
pub const HEADER: [u8; 8] = [0; 8];
/// clamscan scans in buffers of this size (ORACLE.md §2c).
pub const CHUNK: usize = 131_072;

/// Number of files of each kind. The fixed sets (`multi/`, `allow/`, one empty file) come on top.
#[derive(Clone, Debug)]
pub struct Counts {
    pub ndb: usize,
    pub ldb: usize,
    pub hash: usize,
    pub clean: usize,
    pub near_miss: usize,
    /// Files of 1-4 MB (each exercises one large-offset feature).
    pub big: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            ndb: 140,
            ldb: 60,
            hash: 40,
            clean: 20,
            near_miss: 50,
            big: 4,
        }
    }
}

/// Expected result for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Clean,
    Empty,
    /// Names (with `.UNOFFICIAL`) in `--allmatch` order; without `-z` only the first is printed.
    Found(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct FileCase {
    /// Path relative to `Manifest::data_dir`.
    pub rel: String,
    pub expect: Expect,
    /// What was planted / why (for failure messages).
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub seed: u64,
    pub db_dir: PathBuf,
    pub data_dir: PathBuf,
    pub files: Vec<FileCase>,
    /// Number of lines in hdb/hsb/ndb/ldb/fp/sfp minus ignored ones (clamscan's "Known viruses").
    pub known_signatures: usize,
}

impl Manifest {
    /// The verdict clamscan prints for this case. With `-z` the list of names is printed twice
    /// for binary data (ORACLE.md §2b).
    pub fn expected_verdict(case: &FileCase, allmatch: bool) -> crate::results::Verdict {
        use crate::results::Verdict;
        match &case.expect {
            Expect::Clean => Verdict::Clean,
            Expect::Empty => Verdict::Empty,
            Expect::Found(names) if allmatch => {
                Verdict::Found(names.iter().chain(names.iter()).cloned().collect())
            }
            Expect::Found(names) => Verdict::Found(vec![names[0].clone()]),
        }
    }
}

/// Reported name of a signature from a generated (unofficial) db.
pub fn reported(name: &str) -> String {
    format!("{name}.UNOFFICIAL")
}

// ---------------------------------------------------------------- hex patterns

#[derive(Clone, Debug)]
enum Gap {
    Exact(usize),
    Range(usize, usize),
    UpTo(usize),
    AtLeast(usize),
}

#[derive(Clone, Debug)]
enum El {
    Lit(Vec<u8>),
    /// `??` repeated
    Any(usize),
    /// `a?`: high nibble fixed (always >= 8 so concretisations are filler-range bytes)
    NibHi(u8),
    /// `?a`: low nibble fixed
    NibLo(u8),
    Gap(Gap),
    Star,
    /// `(aa|bb)` / `(aabb|ccdd)`: all options of equal length
    Alt(Vec<Vec<u8>>),
    /// `!(aa|bb)`: single high bytes
    Not(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Pattern {
    els: Vec<El>,
}

fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

impl Pattern {
    fn hex(&self) -> String {
        let mut s = String::new();
        for e in &self.els {
            match e {
                El::Lit(b) => s.push_str(&hexs(b)),
                El::Any(n) => s.push_str(&"??".repeat(*n)),
                El::NibHi(a) => write!(s, "{a:x}?").unwrap(),
                El::NibLo(a) => write!(s, "?{a:x}").unwrap(),
                El::Gap(Gap::Exact(n)) => write!(s, "{{{n}}}").unwrap(),
                El::Gap(Gap::Range(n, m)) => write!(s, "{{{n}-{m}}}").unwrap(),
                El::Gap(Gap::UpTo(n)) => write!(s, "{{-{n}}}").unwrap(),
                El::Gap(Gap::AtLeast(n)) => write!(s, "{{{n}-}}").unwrap(),
                El::Star => s.push('*'),
                El::Alt(opts) => write!(
                    s,
                    "({})",
                    opts.iter().map(|o| hexs(o)).collect::<Vec<_>>().join("|")
                )
                .unwrap(),
                El::Not(opts) => write!(
                    s,
                    "!({})",
                    opts.iter()
                        .map(|o| hexs(&[*o]))
                        .collect::<Vec<_>>()
                        .join("|")
                )
                .unwrap(),
            }
        }
        s
    }

    fn is_static(&self) -> bool {
        self.els.iter().all(|e| matches!(e, El::Lit(_)))
    }

    /// Bytes that match the pattern. `star` = length used for `*`.
    fn concretise(&self, rng: &mut Rng, star: Option<usize>) -> Vec<u8> {
        self.concretise_with(rng, star, usize::MAX)
    }

    /// Index of an element whose violation makes the pattern not match, if any.
    fn violable(&self, rng: &mut Rng) -> Option<usize> {
        let idx: Vec<usize> = self
            .els
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                matches!(
                    e,
                    El::NibHi(_)
                        | El::NibLo(_)
                        | El::Gap(Gap::Exact(_) | Gap::Range(..) | Gap::UpTo(_))
                        | El::Alt(_)
                        | El::Not(_)
                )
            })
            .map(|(i, _)| i)
            .collect();
        (!idx.is_empty()).then(|| *rng.pick(&idx))
    }

    /// Like `concretise`, but element `bad` is concretised so that it does NOT match.
    fn concretise_with(&self, rng: &mut Rng, star: Option<usize>, bad: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, e) in self.els.iter().enumerate() {
            let bad = i == bad;
            match e {
                El::Lit(b) => out.extend_from_slice(b),
                El::Any(n) => out.extend(rng.filler(*n)),
                El::NibHi(a) => {
                    let hi = if bad {
                        loop {
                            let h = rng.range(8, 15) as u8;
                            if h != *a {
                                break h;
                            }
                        }
                    } else {
                        *a
                    };
                    out.push(hi << 4 | rng.below(16) as u8)
                }
                El::NibLo(a) => {
                    let lo = if bad {
                        (a + rng.range(1, 15) as u8) & 15
                    } else {
                        *a
                    };
                    out.push((rng.range(8, 15) as u8) << 4 | lo)
                }
                El::Gap(g) => {
                    let n = match (g, bad) {
                        (Gap::Exact(n), false) => *n,
                        (Gap::Exact(n), true) => n + 1,
                        (Gap::Range(n, m), false) => rng.range(*n, *m),
                        (Gap::Range(_, m), true) => m + 1 + rng.range(0, 3),
                        (Gap::UpTo(n), false) => rng.range(0, *n),
                        (Gap::UpTo(n), true) => n + 1 + rng.range(0, 3),
                        (Gap::AtLeast(n), _) => rng.range(*n, n + 40),
                    };
                    out.extend(rng.filler(n))
                }
                El::Star => {
                    let n = star.unwrap_or_else(|| rng.range(0, 60));
                    out.extend(rng.filler(n))
                }
                El::Alt(opts) => {
                    if bad {
                        let len = opts[0].len();
                        loop {
                            let c = rng.filler(len);
                            if !opts.contains(&c) {
                                out.extend(c);
                                break;
                            }
                        }
                    } else {
                        let o: &Vec<u8> = rng.pick(opts);
                        out.extend_from_slice(o)
                    }
                }
                El::Not(set) => {
                    let b = if bad {
                        *rng.pick(set)
                    } else {
                        loop {
                            let b = rng.filler_byte();
                            if !set.contains(&b) {
                                break b;
                            }
                        }
                    };
                    out.push(b)
                }
            }
        }
        out
    }
}

/// Unique id -> 4 bytes `7F a b c` with a,b,c printable non-letters (not '<').
fn id_bytes(id: usize) -> [u8; 4] {
    let set: Vec<u8> = (0x21u8..=0x7e)
        .filter(|c| !c.is_ascii_alphabetic() && *c != b'<')
        .collect();
    let n = set.len();
    assert!(id < n * n * n, "too many signatures");
    [0x7f, set[id / (n * n)], set[(id / n) % n], set[id % n]]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Static,
    Wild,
}

fn gen_pattern(rng: &mut Rng, id: usize, style: Style, max_els: usize) -> Pattern {
    let mut first = id_bytes(id).to_vec();
    let extra = if style == Style::Static {
        rng.range(2, 12)
    } else {
        rng.range(0, 3)
    };
    first.extend(rng.low_bytes(extra));
    let mut els = vec![El::Lit(first)];
    if style == Style::Wild {
        for _ in 0..rng.range(1, max_els) {
            let e = match rng.below(11) {
                0 => El::Any(rng.range(1, 4)),
                1 => El::NibHi(rng.range(8, 15) as u8),
                2 => El::NibLo(rng.range(0, 15) as u8),
                3 => El::Gap(Gap::Exact(rng.range(1, 20))),
                4 => {
                    let n = rng.range(0, 10);
                    El::Gap(Gap::Range(n, n + rng.range(1, 30)))
                }
                5 => El::Gap(Gap::UpTo(rng.range(1, 20))),
                6 => El::Gap(Gap::AtLeast(rng.range(1, 10))),
                7 => El::Star,
                8 => {
                    // single-byte alternatives, low or filler-range values
                    let k = rng.range(2, 4);
                    let mut opts: Vec<Vec<u8>> = Vec::new();
                    while opts.len() < k {
                        let b = if rng.chance(1, 2) {
                            rng.low_byte()
                        } else {
                            rng.filler_byte()
                        };
                        if !opts.contains(&vec![b]) {
                            opts.push(vec![b]);
                        }
                    }
                    El::Alt(opts)
                }
                9 => {
                    let (k, len) = (rng.range(2, 3), rng.range(2, 3));
                    let mut opts: Vec<Vec<u8>> = Vec::new();
                    while opts.len() < k {
                        let o = rng.low_bytes(len);
                        if !opts.contains(&o) {
                            opts.push(o);
                        }
                    }
                    El::Alt(opts)
                }
                _ => {
                    let k = rng.range(1, 3);
                    let mut set = Vec::new();
                    while set.len() < k {
                        let b = rng.filler_byte();
                        if !set.contains(&b) {
                            set.push(b);
                        }
                    }
                    El::Not(set)
                }
            };
            els.push(e);
            let n = rng.range(2, 5);
            els.push(El::Lit(rng.low_bytes(n)));
        }
    }
    Pattern { els }
}

// ---------------------------------------------------------------- ndb

#[derive(Clone, Debug)]
enum Off {
    Any,
    Abs(usize),
    Range(usize, usize),
    Eof(usize),
}

impl Off {
    fn text(&self) -> String {
        match self {
            Off::Any => "*".into(),
            Off::Abs(n) => n.to_string(),
            Off::Range(n, m) => format!("{n},{m}"),
            Off::Eof(n) => format!("EOF-{n}"),
        }
    }
}

/// A plant: bytes at a fixed offset, or floating (placed in order with random gaps).
#[derive(Clone, Debug)]
struct Plant {
    at: Option<usize>,
    bytes: Vec<u8>,
}

fn floating(bytes: Vec<u8>) -> Plant {
    Plant { at: None, bytes }
}

/// Build a file of (at least) `size` bytes: header, filler, plants. Fixed plants are written at
/// their offsets; floating ones are spread, in order, after the last fixed plant.
fn build_file(rng: &mut Rng, size: usize, plants: &[Plant]) -> Vec<u8> {
    let fixed_end = plants
        .iter()
        .filter_map(|p| p.at.map(|a| a + p.bytes.len()))
        .max()
        .unwrap_or(16)
        .max(16);
    let float_len: usize = plants
        .iter()
        .filter(|p| p.at.is_none())
        .map(|p| p.bytes.len() + 1)
        .sum();
    let size = size.max(fixed_end + float_len + if float_len > 0 { 16 } else { 0 });
    let mut f = HEADER.to_vec();
    f.extend(rng.filler(size - HEADER.len()));
    for p in plants {
        if let Some(a) = p.at {
            assert!(
                a >= HEADER.len() && a + p.bytes.len() <= size,
                "plant out of range"
            );
            f[a..a + p.bytes.len()].copy_from_slice(&p.bytes);
        }
    }
    let floats: Vec<&Plant> = plants.iter().filter(|p| p.at.is_none()).collect();
    if !floats.is_empty() {
        let slack = size - 8 - fixed_end - float_len;
        let weights: Vec<u64> = (0..=floats.len()).map(|_| rng.below(1000) + 1).collect();
        let total: u64 = weights.iter().sum();
        let mut pos = fixed_end;
        for (p, w) in floats.iter().zip(&weights) {
            pos += 1 + (slack as u64 * w / total) as usize;
            f[pos..pos + p.bytes.len()].copy_from_slice(&p.bytes);
            pos += p.bytes.len();
        }
    }
    f
}

fn small_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => rng.range(20_000, 200_000),
        1..=3 => rng.range(40, 300),
        _ => rng.range(300, 6000),
    }
}

// ---------------------------------------------------------------- generator state

struct Gen {
    rng: Rng,
    next_id: usize,
    data: PathBuf,
    files: Vec<FileCase>,
    hdb: Vec<String>,
    hsb: Vec<String>,
    ndb: Vec<String>,
    ldb: Vec<String>,
    fp: Vec<String>,
    sfp: Vec<String>,
    ign2: Vec<String>,
    ignored: usize,
    counter: usize,
}

/// A generated ndb signature.
struct NdbSig {
    name: String,
    pat: Pattern,
    off: Off,
}

/// A generated ldb subsignature: pattern + modifiers.
#[derive(Clone)]
struct Sub {
    pat: Pattern,
    abs: Option<usize>,
    /// modifier letters after `::` (`i`, `w`, `wa`, `f`, `fi`), empty = none
    modi: &'static str,
}

impl Sub {
    fn text(&self) -> String {
        let mut s = String::new();
        if let Some(a) = self.abs {
            write!(s, "{a}:").unwrap();
        }
        s.push_str(&self.pat.hex());
        if !self.modi.is_empty() {
            write!(s, "::{}", self.modi).unwrap();
        }
        s
    }
    /// Matching bytes (respecting i/w/a).
    fn concretise(&self, rng: &mut Rng) -> Vec<u8> {
        let mut b = self.pat.concretise(rng, None);
        if self.modi.contains('i') {
            for c in b.iter_mut() {
                if c.is_ascii_alphabetic() && rng.chance(1, 2) {
                    *c = c.to_ascii_uppercase();
                }
            }
        }
        let wide = self.modi.contains('w') && !(self.modi.contains('a') && rng.chance(1, 2));
        if wide {
            b = b.iter().flat_map(|c| [*c, 0]).collect();
        }
        b
    }
}

struct LdbSig {
    name: String,
    logic: String,
    subs: Vec<Sub>,
}

impl LdbSig {
    fn line(&self) -> String {
        let mut s = format!("{};Engine:51-255,Target:0;{}", self.name, self.logic);
        for sub in &self.subs {
            s.push(';');
            s.push_str(&sub.text());
        }
        s
    }
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}
fn sha1_hex(b: &[u8]) -> String {
    hex::encode(Sha1::digest(b))
}
fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Gen {
    fn id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn write(&mut self, dir: &str, data: &[u8], expect: Expect, note: String) -> String {
        self.counter += 1;
        let rel = format!("{dir}/{:04}.bin", self.counter);
        let p = self.data.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        self.files.push(FileCase {
            rel: rel.clone(),
            expect,
            note,
        });
        rel
    }

    fn new_ndb(&mut self, style: Style) -> NdbSig {
        let id = self.id();
        let pat = gen_pattern(&mut self.rng, id, style, 4);
        NdbSig {
            name: format!("Gen.Ndb.{id}"),
            pat,
            off: Off::Any,
        }
    }

    fn ndb_line(s: &NdbSig) -> String {
        format!("{}:0:{}:{}", s.name, s.off.text(), s.pat.hex())
    }

    /// A positive (or, with `miss`, near-miss) file for a fresh ndb signature.
    fn ndb_case(&mut self, miss: bool) {
        let style = if self.rng.chance(1, 3) {
            Style::Static
        } else {
            Style::Wild
        };
        let mut sig = self.new_ndb(style);
        let bad = if miss {
            sig.pat.violable(&mut self.rng)
        } else {
            None
        };
        let mut bytes = match bad {
            Some(i) => sig.pat.concretise_with(&mut self.rng, None, i),
            None => sig.pat.concretise(&mut self.rng, None),
        };
        let size = small_size(&mut self.rng).max(bytes.len() + 40);
        // offset kind; a near-miss without a violable element misplaces the match instead
        let kind = if miss && bad.is_none() {
            self.rng.range(1, 4)
        } else {
            *self.rng.pick(&[0, 0, 1, 2, 3])
        };
        let shift = usize::from(miss && bad.is_none());
        let room = size - bytes.len() - 8; // last possible start
        let (off, at) = match kind {
            0 => (Off::Any, None),
            1 => {
                let n = self.rng.range(16, room - 1);
                (Off::Abs(n), Some(n + shift))
            }
            2 => {
                let n = self.rng.range(16, room / 2);
                let m = self.rng.range(0, (room - 1 - n).min(500));
                let at = if shift == 1 {
                    n + m + 1
                } else {
                    n + self.rng.range(0, m)
                };
                (Off::Range(n, m), Some(at))
            }
            3 => {
                let n = bytes.len() + self.rng.range(1, (size - bytes.len() - 20).min(300));
                (Off::Eof(n), Some(size - n - shift))
            }
            _ => {
                // near miss without offset / violable element: drop the last literal byte
                bytes.pop();
                (Off::Any, None)
            }
        };
        sig.off = off;
        let line = Self::ndb_line(&sig);
        let data = build_file(&mut self.rng, size, &[Plant { at, bytes }]);
        assert_eq!(data.len(), size);
        self.ndb.push(line.clone());
        if miss {
            self.write(
                "near",
                &data,
                Expect::Clean,
                format!("near miss of ndb {line}"),
            );
        } else {
            self.write(
                "pos",
                &data,
                Expect::Found(vec![reported(&sig.name)]),
                format!("ndb {line}"),
            );
        }
    }

    fn new_sub(&mut self, style: Style) -> Sub {
        let id = self.id();
        Sub {
            pat: gen_pattern(&mut self.rng, id, style, 2),
            abs: None,
            modi: "",
        }
    }

    fn letter_sub(&mut self, modi: &'static str) -> Sub {
        let id = self.id();
        let mut b = id_bytes(id).to_vec();
        let n = self.rng.range(3, 8);
        b.extend(self.rng.letters(n));
        Sub {
            pat: Pattern {
                els: vec![El::Lit(b)],
            },
            abs: None,
            modi,
        }
    }

    /// Build an ldb of a random kind; returns (sig, plants for a match, plants for a near miss).
    fn new_ldb(&mut self) -> (LdbSig, Vec<Plant>, Vec<Plant>) {
        let id = self.id();
        let name = format!("Gen.Ldb.{id}");
        let kind = self.rng.below(12);
        let st = |g: &mut Gen| {
            if g.rng.chance(1, 2) {
                Style::Static
            } else {
                Style::Wild
            }
        };
        let (logic, subs, pos, neg): LdbPlan = match kind {
            0 | 1 => {
                let k = self.rng.range(2, 3);
                let subs: Vec<Sub> = (0..k)
                    .map(|_| {
                        let s = st(self);
                        self.new_sub(s)
                    })
                    .collect();
                let logic = (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join("&");
                (
                    logic,
                    subs,
                    vec![(0..k).collect()],
                    vec![(0..k - 1).collect()],
                )
            }
            2 => {
                let subs = vec![self.new_sub(Style::Static), self.new_sub(Style::Wild)];
                let which = self.rng.range(0, 1);
                ("0|1".into(), subs, vec![vec![which]], vec![])
            }
            3 => {
                let subs = vec![
                    self.new_sub(Style::Wild),
                    self.new_sub(Style::Static),
                    self.new_sub(Style::Static),
                ];
                let which = self.rng.range(0, 1);
                (
                    "(0|1)&2".into(),
                    subs,
                    vec![vec![which, 2]],
                    vec![vec![0, 1]],
                )
            }
            4 => {
                let s = st(self);
                let subs = vec![self.new_sub(s)];
                let three = self.rng.chance(1, 2);
                (
                    "0=2".into(),
                    subs,
                    vec![vec![0, 0]],
                    vec![if three { vec![0, 0, 0] } else { vec![0] }],
                )
            }
            5 => {
                let s = st(self);
                let subs = vec![self.new_sub(s)];
                let n = self.rng.range(2, 3);
                ("0>1".into(), subs, vec![vec![0; n]], vec![vec![0]])
            }
            6 => (
                "0".into(),
                vec![self.letter_sub("i")],
                vec![vec![0]],
                vec![],
            ),
            7 => (
                "0".into(),
                vec![self.letter_sub("w")],
                vec![vec![0]],
                vec![],
            ),
            8 => (
                "0".into(),
                vec![self.letter_sub("wa")],
                vec![vec![0]],
                vec![],
            ),
            9 => {
                let m = if self.rng.chance(1, 2) { "f" } else { "fi" };
                ("0".into(), vec![self.letter_sub(m)], vec![vec![0]], vec![])
            }
            10 => {
                let mut a = self.new_sub(Style::Static);
                a.abs = Some(self.rng.range(16, 200));
                let b = self.new_sub(Style::Wild);
                ("0&1".into(), vec![a, b], vec![vec![0, 1]], vec![vec![0, 1]])
            }
            _ => {
                let subs = vec![self.new_sub(Style::Wild), self.letter_sub("i")];
                ("0&1".into(), subs, vec![vec![0, 1]], vec![vec![1]])
            }
        };
        let mk = |g: &mut Gen, list: &[usize], miss: bool| -> Vec<Plant> {
            list.iter()
                .map(|&i| {
                    let sub = &subs[i];
                    let mut bytes = sub.concretise(&mut g.rng);
                    let at = sub.abs.map(|a| a + usize::from(miss));
                    if miss && at.is_none() {
                        match sub.modi {
                            // ::f: glue a letter to the word (no longer a full word)
                            "f" | "fi" => bytes.push(b'k'),
                            // ::w: plant the ASCII form only
                            "w" => bytes = sub.pat.concretise(&mut g.rng, None),
                            _ => {}
                        }
                    }
                    Plant { at, bytes }
                })
                .collect()
        };
        let pos_plants = mk(self, &pos[0], false);
        let neg_plants = match kind {
            7 | 9 => mk(self, &[0], true),
            10 => mk(self, &[0, 1], true),
            _ if !neg.is_empty() => mk(self, &neg[0], false),
            _ => Vec::new(),
        };
        (LdbSig { name, logic, subs }, pos_plants, neg_plants)
    }

    fn ldb_case(&mut self, miss: bool) -> bool {
        let (sig, pos, neg) = self.new_ldb();
        if miss && neg.is_empty() {
            return false;
        }
        let line = sig.line();
        self.ldb.push(line.clone());
        let size = small_size(&mut self.rng);
        if miss {
            let data = build_file(&mut self.rng, size, &neg);
            self.write(
                "near",
                &data,
                Expect::Clean,
                format!("near miss of ldb {line}"),
            );
        } else {
            let data = build_file(&mut self.rng, size, &pos);
            self.write(
                "pos",
                &data,
                Expect::Found(vec![reported(&sig.name)]),
                format!("ldb {line}"),
            );
        }
        true
    }

    fn hash_line(&mut self, kind: u64, data: &[u8], name: &str) -> (bool, String) {
        let size = data.len();
        let upper = self.rng.chance(1, 5);
        let (is_hsb, mut h, sz) = match kind {
            0 => (false, md5_hex(data), size.to_string()),
            1 => (true, sha1_hex(data), size.to_string()),
            2 => (true, sha256_hex(data), "*".to_string()),
            3 => (false, md5_hex(data), "*".to_string()),
            _ => (true, sha256_hex(data), size.to_string()),
        };
        if upper {
            h = h.to_uppercase();
        }
        let fl = if sz == "*" { ":73" } else { "" };
        (is_hsb, format!("{h}:{sz}:{name}{fl}"))
    }

    fn push_hash(&mut self, is_hsb: bool, line: String) {
        if is_hsb {
            self.hsb.push(line)
        } else {
            self.hdb.push(line)
        }
    }

    fn hash_case(&mut self) {
        let id = self.id();
        let name = format!("Gen.Hash.{id}");
        let size = small_size(&mut self.rng);
        let data = build_file(&mut self.rng, size, &[]);
        let kind = match self.rng.below(20) {
            0 => 2,
            1 => 3,
            2 | 3 => 1,
            x if x < 12 => 0,
            _ => 4,
        };
        let (hsb, line) = self.hash_line(kind, &data, &name);
        self.push_hash(hsb, line.clone());
        self.write(
            "pos",
            &data,
            Expect::Found(vec![reported(&name)]),
            format!("hash {line}"),
        );
    }

    /// Near misses for hashes: right hash with wrong size, or hash of a one-byte-different file.
    fn hash_miss(&mut self) {
        let id = self.id();
        let name = format!("Gen.Hash.{id}");
        let size = small_size(&mut self.rng);
        let mut data = build_file(&mut self.rng, size, &[]);
        let kind = if self.rng.chance(1, 2) { 0 } else { 4 };
        let (hsb, line) = self.hash_line(kind, &data, &name);
        let line = if self.rng.chance(1, 2) {
            let (h, rest) = line.split_once(':').unwrap();
            let (_, name) = rest.split_once(':').unwrap();
            format!("{h}:{}:{name}", size + 1)
        } else {
            let i = self.rng.range(8, size - 1);
            data[i] ^= 0x01;
            line
        };
        self.push_hash(hsb, line.clone());
        self.write(
            "near",
            &data,
            Expect::Clean,
            format!("near miss of hash {line}"),
        );
    }

    fn static_ndb(&mut self) -> NdbSig {
        self.new_ndb(Style::Static)
    }

    fn wild_ndb(&mut self) -> NdbSig {
        loop {
            let s = self.new_ndb(Style::Wild);
            if !s.pat.is_static() {
                return s;
            }
        }
    }

    fn simple_ldb(&mut self) -> (LdbSig, Vec<Plant>) {
        let id = self.id();
        let sub = self.new_sub(Style::Static);
        let b = sub.concretise(&mut self.rng);
        (
            LdbSig {
                name: format!("Gen.Ldb.{id}"),
                logic: "0".into(),
                subs: vec![sub],
            },
            vec![floating(b)],
        )
    }

    /// Files matched by several signatures: pins the reporting order (ORACLE.md §2).
    fn multi_cases(&mut self) {
        // 1. ndb + hdb(md5) -> ndb first
        let n = self.static_ndb();
        let b = n.pat.concretise(&mut self.rng, None);
        let data = build_file(&mut self.rng, 2000, &[floating(b)]);
        let h = format!(
            "{}:{}:Gen.Multi.Md5.{}",
            md5_hex(&data),
            data.len(),
            self.id()
        );
        let hn = h.rsplit(':').next().unwrap().to_string();
        self.ndb.push(Self::ndb_line(&n));
        self.hdb.push(h);
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&n.name), reported(&hn)]),
            "ndb + hdb".into(),
        );

        // 2. hsb(sha256) + ldb -> hash first
        let (l, plants) = self.simple_ldb();
        let data = build_file(&mut self.rng, 3000, &plants);
        let hn = format!("Gen.Multi.Sha256.{}", self.id());
        self.hsb
            .push(format!("{}:{}:{hn}", sha256_hex(&data), data.len()));
        self.ldb.push(l.line());
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&hn), reported(&l.name)]),
            "hsb + ldb".into(),
        );

        // 3. everything: ldb (early in file) + ndb (late) + md5 + sha1 + sha256
        let (l, mut plants) = self.simple_ldb();
        let n = self.wild_ndb();
        plants.push(floating(n.pat.concretise(&mut self.rng, None)));
        let data = build_file(&mut self.rng, 5000, &plants);
        let (m5, s1, s2) = (
            format!("Gen.Multi.Md5.{}", self.id()),
            format!("Gen.Multi.Sha1.{}", self.id()),
            format!("Gen.Multi.Sha256.{}", self.id()),
        );
        // sha256 first in the hsb file, sha1 after: type order, not line order, decides
        self.hsb
            .push(format!("{}:{}:{s2}", sha256_hex(&data), data.len()));
        self.hsb
            .push(format!("{}:{}:{s1}", sha1_hex(&data), data.len()));
        self.hdb
            .push(format!("{}:{}:{m5}", md5_hex(&data), data.len()));
        self.ldb.push(l.line());
        self.ndb.push(Self::ndb_line(&n));
        let names = [&n.name, &m5, &s1, &s2, &l.name]
            .iter()
            .map(|s| reported(s))
            .collect();
        self.write(
            "multi",
            &data,
            Expect::Found(names),
            "ndb + md5 + sha1 + sha256 + ldb".into(),
        );

        // 4./5. two static / two wildcard ndbs: earlier start first, lines written late-first
        for style in [Style::Static, Style::Wild] {
            let (a, b) = if style == Style::Static {
                (self.static_ndb(), self.static_ndb())
            } else {
                (self.wild_ndb(), self.wild_ndb())
            };
            let pa = a.pat.concretise(&mut self.rng, None);
            let pb = b.pat.concretise(&mut self.rng, None);
            let data = build_file(&mut self.rng, 4000, &[floating(pa), floating(pb)]);
            self.ndb.push(Self::ndb_line(&b));
            self.ndb.push(Self::ndb_line(&a));
            self.write(
                "multi",
                &data,
                Expect::Found(vec![reported(&a.name), reported(&b.name)]),
                "two ndb, earlier first".into(),
            );
        }

        // 6. wildcard early + static late, same 128 KiB buffer -> static first
        let (w, s) = (self.wild_ndb(), self.static_ndb());
        let pw = w.pat.concretise(&mut self.rng, None);
        let ps = s.pat.concretise(&mut self.rng, None);
        let data = build_file(&mut self.rng, 6000, &[floating(pw), floating(ps)]);
        self.ndb.push(Self::ndb_line(&w));
        self.ndb.push(Self::ndb_line(&s));
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&s.name), reported(&w.name)]),
            "wild early + static late: static first".into(),
        );

        // 7. wildcard in buffer 0, static in buffer 1 -> wildcard first
        let (w, s) = (self.wild_ndb(), self.static_ndb());
        let pw = Plant {
            at: Some(self.rng.range(16, 1000)),
            bytes: w.pat.concretise(&mut self.rng, None),
        };
        let ps = Plant {
            at: Some(CHUNK + self.rng.range(100, 50_000)),
            bytes: s.pat.concretise(&mut self.rng, None),
        };
        let data = build_file(&mut self.rng, 2 * CHUNK + 5000, &[pw, ps]);
        self.ndb.push(Self::ndb_line(&s));
        self.ndb.push(Self::ndb_line(&w));
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&w.name), reported(&s.name)]),
            "wild in buffer 0, static in buffer 1: wild first".into(),
        );

        // 8. two ldbs: line order wins over position in the file
        let (l1, p1) = self.simple_ldb();
        let (l2, p2) = self.simple_ldb();
        let mut plants = p2;
        plants.extend(p1);
        let data = build_file(&mut self.rng, 3000, &plants);
        self.ldb.push(l1.line());
        self.ldb.push(l2.line());
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&l1.name), reported(&l2.name)]),
            "two ldb: line order".into(),
        );

        // 9. ldb early in file + ndb late -> ndb first
        let (l, mut plants) = self.simple_ldb();
        let n = self.static_ndb();
        plants.push(floating(n.pat.concretise(&mut self.rng, None)));
        let data = build_file(&mut self.rng, 3000, &plants);
        self.ldb.push(l.line());
        self.ndb.push(Self::ndb_line(&n));
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&n.name), reported(&l.name)]),
            "ldb early + ndb late: ndb first".into(),
        );

        // 10. two names, identical pattern: both reported, line order
        let a = self.static_ndb();
        let id = self.id();
        let b = NdbSig {
            name: format!("Gen.Ndb.{id}"),
            pat: a.pat.clone(),
            off: Off::Any,
        };
        let pa = a.pat.concretise(&mut self.rng, None);
        let data = build_file(&mut self.rng, 700, &[floating(pa)]);
        self.ndb.push(Self::ndb_line(&a));
        self.ndb.push(Self::ndb_line(&b));
        self.write(
            "multi",
            &data,
            Expect::Found(vec![reported(&a.name), reported(&b.name)]),
            "same pattern, two names".into(),
        );
    }

    /// Allowlisted (.fp/.sfp) and ignored (.ign2) detections.
    fn allow_cases(&mut self) {
        // .fp MD5 over an ndb hit, over an ldb hit, over a hash hit; .sfp SHA256 over an ndb hit
        for k in 0..4 {
            let (plants, line_kind, lines): (Vec<Plant>, &str, String) = match k {
                0 | 3 => {
                    let n = self.wild_ndb();
                    (
                        vec![floating(n.pat.concretise(&mut self.rng, None))],
                        "ndb",
                        Self::ndb_line(&n),
                    )
                }
                1 => {
                    let (l, p) = self.simple_ldb();
                    (p, "ldb", l.line())
                }
                _ => (vec![], "hdb", String::new()),
            };
            let data = build_file(&mut self.rng, 1500, &plants);
            match line_kind {
                "ndb" => self.ndb.push(lines.clone()),
                "ldb" => self.ldb.push(lines.clone()),
                _ => {
                    let id = self.id();
                    self.hdb
                        .push(format!("{}:{}:Gen.Hash.{id}", md5_hex(&data), data.len()));
                }
            }
            let aid = self.id();
            if k == 3 {
                self.sfp.push(format!(
                    "{}:{}:Gen.Allow.{aid}",
                    sha256_hex(&data),
                    data.len()
                ));
            } else {
                self.fp
                    .push(format!("{}:{}:Gen.Allow.{aid}", md5_hex(&data), data.len()));
            }
            self.write(
                "allow",
                &data,
                Expect::Clean,
                format!(
                    "{} allowlisted {line_kind} {lines}",
                    if k == 3 { "sfp" } else { "fp" }
                ),
            );
        }
        // .ign2: by name (ndb), by name:md5-of-line (ldb), by name (hash), wrong md5 (still found)
        for k in 0..4 {
            let (plants, name, line, kind): (Vec<Plant>, String, String, &str) = match k {
                0 | 3 => {
                    let n = self.wild_ndb();
                    (
                        vec![floating(n.pat.concretise(&mut self.rng, None))],
                        n.name.clone(),
                        Self::ndb_line(&n),
                        "ndb",
                    )
                }
                1 => {
                    let (l, p) = self.simple_ldb();
                    (p, l.name.clone(), l.line(), "ldb")
                }
                _ => (
                    vec![],
                    format!("Gen.Hash.{}", self.id()),
                    String::new(),
                    "hsb",
                ),
            };
            let data = build_file(&mut self.rng, 900, &plants);
            let line = if kind == "hsb" {
                format!("{}:{}:{name}", sha256_hex(&data), data.len())
            } else {
                line
            };
            match kind {
                "ndb" => self.ndb.push(line.clone()),
                "ldb" => self.ldb.push(line.clone()),
                _ => self.hsb.push(line.clone()),
            }
            let (ign, expect) = match k {
                1 => (
                    format!("{name}:{}", md5_hex(line.as_bytes())),
                    Expect::Clean,
                ),
                3 => (
                    format!("{name}:{}", md5_hex(format!("{line}\n").as_bytes())),
                    Expect::Found(vec![reported(&name)]),
                ),
                _ => (name.clone(), Expect::Clean),
            };
            if expect == Expect::Clean {
                self.ignored += 1;
            }
            self.ign2.push(ign.clone());
            self.write(
                "allow",
                &data,
                expect,
                format!("ign2 `{ign}` vs {kind} {line}"),
            );
        }
    }

    /// Files of 1..=9 bytes: clamscan never reports files of 5 bytes or less, not even by hash
    /// (ORACLE.md §8).
    fn tiny_cases(&mut self) {
        for n in 1..=9usize {
            let zeros = n.min(4);
            let mut data = vec![0u8; zeros];
            data.extend(self.rng.filler(n - zeros));
            let id = self.id();
            let name = format!("Gen.Hash.{id}");
            if n % 2 == 0 {
                self.hdb.push(format!("{}:{n}:{name}", md5_hex(&data)));
            } else {
                self.hsb.push(format!("{}:{n}:{name}", sha256_hex(&data)));
            }
            let expect = if n <= 5 {
                Expect::Clean
            } else {
                Expect::Found(vec![reported(&name)])
            };
            self.write(
                "tiny",
                &data,
                expect,
                format!("tiny file of {n} bytes, hash sig"),
            );
        }
        for n in [5usize, 6] {
            let id = self.id();
            let name = format!("Gen.Ndb.{id}");
            let mut data = vec![0u8; n - 4];
            data.extend(id_bytes(id));
            self.ndb.push(format!("{name}:0:*:{}", hexs(&id_bytes(id))));
            let expect = if n <= 5 {
                Expect::Clean
            } else {
                Expect::Found(vec![reported(&name)])
            };
            self.write(
                "tiny",
                &data,
                expect,
                format!("tiny file of {n} bytes, ndb sig"),
            );
        }
    }

    /// 1-4 MB files, each exercising one large-offset feature.
    fn big_case(&mut self, k: usize) {
        let size = self.rng.range(1 << 20, 4 << 20);
        match k % 4 {
            0 => {
                // ndb with `*` spanning megabytes
                let id = self.id();
                let mut first = id_bytes(id).to_vec();
                first.extend(self.rng.low_bytes(4));
                let pat = Pattern {
                    els: vec![El::Lit(first), El::Star, El::Lit(self.rng.low_bytes(5))],
                };
                let sig = NdbSig {
                    name: format!("Gen.Ndb.{id}"),
                    pat,
                    off: Off::Any,
                };
                let star = size - 2000;
                let b = sig.pat.concretise(&mut self.rng, Some(star));
                let data = build_file(
                    &mut self.rng,
                    size,
                    &[Plant {
                        at: Some(100),
                        bytes: b,
                    }],
                );
                self.ndb.push(Self::ndb_line(&sig));
                self.write(
                    "big",
                    &data,
                    Expect::Found(vec![reported(&sig.name)]),
                    format!("big: ndb `*` over {star} bytes"),
                );
            }
            1 => {
                // EOF-n near the end / absolute offset deep in the file
                let mut sig = if self.rng.chance(1, 2) {
                    self.static_ndb()
                } else {
                    self.wild_ndb()
                };
                let b = sig.pat.concretise(&mut self.rng, None);
                let (off, at) = if self.rng.chance(1, 2) {
                    let n = b.len() + self.rng.range(0, 5000);
                    (Off::Eof(n), size - n)
                } else {
                    let n = self.rng.range(size / 2, size - b.len() - 100);
                    (Off::Abs(n), n)
                };
                sig.off = off;
                let data = build_file(
                    &mut self.rng,
                    size,
                    &[Plant {
                        at: Some(at),
                        bytes: b,
                    }],
                );
                self.ndb.push(Self::ndb_line(&sig));
                self.write(
                    "big",
                    &data,
                    Expect::Found(vec![reported(&sig.name)]),
                    format!("big: {}", Self::ndb_line(&sig)),
                );
            }
            2 => {
                // ndb with offset range n,m far into the file, planted across a 128 KiB boundary
                let mut sig = self.wild_ndb();
                let b = sig.pat.concretise(&mut self.rng, None);
                let at = CHUNK * self.rng.range(2, 6) - b.len() / 2;
                let n = at - self.rng.range(0, 1000);
                sig.off = Off::Range(n, 2000);
                let data = build_file(
                    &mut self.rng,
                    size,
                    &[Plant {
                        at: Some(at),
                        bytes: b,
                    }],
                );
                self.ndb.push(Self::ndb_line(&sig));
                self.write(
                    "big",
                    &data,
                    Expect::Found(vec![reported(&sig.name)]),
                    format!("big: {}", Self::ndb_line(&sig)),
                );
            }
            _ => {
                // ldb with subsigs megabytes apart, one counted twice
                let id = self.id();
                let (a, b) = (self.new_sub(Style::Static), self.new_sub(Style::Wild));
                let sig = LdbSig {
                    name: format!("Gen.Ldb.{id}"),
                    logic: "0&1>1".into(),
                    subs: vec![a, b],
                };
                let plants = vec![
                    Plant {
                        at: Some(self.rng.range(16, 5000)),
                        bytes: sig.subs[0].concretise(&mut self.rng),
                    },
                    Plant {
                        at: Some(size / 2),
                        bytes: sig.subs[1].concretise(&mut self.rng),
                    },
                    Plant {
                        at: Some(size - 3000),
                        bytes: sig.subs[1].concretise(&mut self.rng),
                    },
                ];
                let data = build_file(&mut self.rng, size, &plants);
                self.ldb.push(sig.line());
                self.write(
                    "big",
                    &data,
                    Expect::Found(vec![reported(&sig.name)]),
                    format!("big: ldb {}", sig.line()),
                );
            }
        }
    }
}

/// Generate the database and corpus under `out_dir` (which is created). Deterministic in `seed`.
/// An ldb under construction: logic, subsignatures, and the subsignature sets that make a positive and a
/// near miss.
type LdbPlan = (String, Vec<Sub>, Vec<Vec<usize>>, Vec<Vec<usize>>);

pub fn generate(out_dir: &Path, seed: u64, counts: &Counts) -> std::io::Result<Manifest> {
    let db_dir = out_dir.join("db");
    let data_dir = out_dir.join("data");
    std::fs::create_dir_all(&db_dir)?;
    std::fs::create_dir_all(&data_dir)?;
    let mut g = Gen {
        rng: Rng::new(seed),
        next_id: 0,
        data: data_dir.clone(),
        files: Vec::new(),
        hdb: Vec::new(),
        hsb: Vec::new(),
        ndb: Vec::new(),
        ldb: Vec::new(),
        fp: Vec::new(),
        sfp: Vec::new(),
        ign2: Vec::new(),
        ignored: 0,
        counter: 0,
    };
    for _ in 0..counts.ndb {
        g.ndb_case(false);
    }
    let mut made = 0;
    while made < counts.ldb {
        if g.ldb_case(false) {
            made += 1;
        }
    }
    for _ in 0..counts.hash {
        g.hash_case();
    }
    for _ in 0..counts.clean {
        let size = small_size(&mut g.rng);
        let data = build_file(&mut g.rng, size, &[]);
        g.write("clean", &data, Expect::Clean, "filler only".into());
    }
    g.write("clean", &[], Expect::Empty, "empty file".into());
    let mut made = 0;
    while made < counts.near_miss {
        let ok = match g.rng.below(5) {
            0 | 1 => {
                g.ndb_case(true);
                true
            }
            2 | 3 => g.ldb_case(true),
            _ => {
                g.hash_miss();
                true
            }
        };
        made += usize::from(ok);
    }
    g.multi_cases();
    g.allow_cases();
    g.tiny_cases();
    for k in 0..counts.big {
        g.big_case(k);
    }

    let write_db = |name: &str, lines: &[String]| -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(()); // an empty db file is malformed for clamscan
        }
        let mut s = String::new();
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        std::fs::write(db_dir.join(name), s)
    };
    write_db("gen.hdb", &g.hdb)?;
    write_db("gen.hsb", &g.hsb)?;
    write_db("gen.ndb", &g.ndb)?;
    write_db("gen.ldb", &g.ldb)?;
    write_db("gen.fp", &g.fp)?;
    write_db("gen.sfp", &g.sfp)?;
    // clamscan quirk (ORACLE.md §3): a `Name` line after a `Name:MD5` line is misparsed, so
    // all name-only lines go first.
    g.ign2.sort_by_key(|l| l.contains(':'));
    write_db("gen.ign2", &g.ign2)?;
    let known = g.hdb.len() + g.hsb.len() + g.ndb.len() + g.ldb.len() + g.fp.len() + g.sfp.len()
        - g.ignored;
    Ok(Manifest {
        seed,
        db_dir,
        data_dir,
        files: g.files,
        known_signatures: known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_unique_ids() {
        let d1 = std::env::temp_dir().join(format!("gen-unit-{}-a", std::process::id()));
        let d2 = std::env::temp_dir().join(format!("gen-unit-{}-b", std::process::id()));
        let c = Counts {
            ndb: 20,
            ldb: 20,
            hash: 5,
            clean: 2,
            near_miss: 10,
            big: 0,
        };
        let m1 = generate(&d1, 7, &c).unwrap();
        let m2 = generate(&d2, 7, &c).unwrap();
        assert_eq!(m1.files.len(), m2.files.len());
        for f in ["gen.ndb", "gen.ldb", "gen.hdb", "gen.hsb"] {
            assert_eq!(
                std::fs::read(d1.join("db").join(f)).unwrap(),
                std::fs::read(d2.join("db").join(f)).unwrap()
            );
        }
        let ids: std::collections::HashSet<[u8; 4]> = (0..5000).map(id_bytes).collect();
        assert_eq!(ids.len(), 5000);
        let _ = std::fs::remove_dir_all(&d1);
        let _ = std::fs::remove_dir_all(&d2);
    }
}
