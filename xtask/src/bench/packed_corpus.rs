//! The corpus of `bench engine --parts packed`: the packed executables and installers of Debian's
//! clamav-testfiles (UPX, FSG, ASPack, MEW, PESpin, Petite, Upack, WWPack, yC; NSIS, AutoIt, InstallShield),
//! each written as many copies whose bytes differ, so that no scanner answers a copy from a cache of file
//! hashes; and, when a `upx` program is on PATH, programs of /usr/bin packed with it at build time.
//!
//! A copy differs from the others by its number written where the packer's unpacking does not read it. Which
//! place that is depends on the packer (FSG and PESpin are no longer unpacked by clamscan once bytes follow
//! the PE's end; Upack keeps code in the PE header; PESpin's keys cover the whole header), so each source is
//! probed: one copy per place (after the end, the DOS stub, the COFF timestamp, the last section's zero
//! padding), scanned once by clamscan with the test database, and the first place whose copy clamscan still
//! finds is used. A source with no such place is written once, unchanged. The copies of
//! every source are then found by clamscan by construction; what the sensor finds is what the bench reports.
//!
//! Cached under target/bench/packed-corpus and rebuilt only when its stamp changes: the layout version, the
//! copies asked for, each source's name, size and mtime, clamscan's and upx's versions. Reads the sources,
//! writes only under its own directory; runs clamscan only for the probe and upx only to pack.

use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian's clamav-testfiles, installed by `cargo xtask setup`.
pub(super) const TESTFILES: &str = "/usr/share/clamav-testfiles";
/// The packed executables and installers taken from it (those present are used).
const PACKED: [&str; 12] = [
    "clam-upx.exe",
    "clam-fsg.exe",
    "clam-aspack.exe",
    "clam-mew.exe",
    "clam-pespin.exe",
    "clam-petite.exe",
    "clam-upack.exe",
    "clam-wwpack.exe",
    "clam-yc.exe",
    "clam-nsis.exe",
    "clam.ea05.exe",
    "clam.ea06.exe",
];
/// Name prefixes of the InstallShield setup programs taken as well (`clam_IScab_ext.exe`, ...).
const PACKED_PREFIXES: [&str; 2] = ["clam_IScab_", "clam_ISmsi_"];
/// ClamAV's `.hsb` line for `clam.exe`, the program every source unpacks to.
pub(super) const CLAM_EXE_HSB: &str =
    "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544:ClamAV-Test-File\n";
/// A source up to this size gets all the copies asked for; a larger one (the installers, up to 1.7 MB)
/// gets as many as fit in `copies` times this many bytes, so that the small packed files, whose cost is per
/// file, make most of the corpus, and it stays a few hundred MB.
const FULL_COPIES_UP_TO: u64 = 32 << 10;
/// Programs of /usr/bin packed with upx, when it is installed, and the sizes taken (upx refuses tiny ones;
/// big ones only add decompression time).
const UPX_PROGRAMS: usize = 200;
const UPX_SIZES: std::ops::RangeInclusive<u64> = (64 << 10)..=(4 << 20);
/// The subdirectory of the upx-packed programs.
pub(super) const UPX_DIR: &str = "upx-usr-bin";
/// Version of the corpus's layout, in the stamp.
const LAYOUT: u32 = 2;

/// Where a copy's number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mark {
    /// 16 bytes appended after the file's end (`packed-copy` and the number).
    Overlay,
    /// The number as 4 bytes at offset 0x40, the DOS stub's code, which no Windows loader runs.
    DosStub,
    /// The number as the COFF header's TimeDateStamp.
    TimeStamp,
    /// The number over the file's last 4 bytes when they are zero: the padding of the last section's
    /// raw data (PESpin's copies, which keep nothing else).
    Padding,
    /// Not changed: the source is written once.
    Unchanged,
}

const MARKS: [Mark; 4] = [Mark::Overlay, Mark::DosStub, Mark::TimeStamp, Mark::Padding];

impl Mark {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mark::Overlay => "overlay",
            Mark::DosStub => "dos-stub",
            Mark::TimeStamp => "timestamp",
            Mark::Padding => "padding",
            Mark::Unchanged => "unchanged",
        }
    }
    fn parse(s: &str) -> Option<Mark> {
        MARKS
            .into_iter()
            .chain([Mark::Unchanged])
            .find(|m| m.name() == s)
    }
    /// Copy `n` of `src`, or `None` when this place does not exist in it.
    fn apply(self, src: &[u8], n: u32) -> Option<Vec<u8>> {
        let pe = src
            .get(0x3c..0x40)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        let mut d = src.to_vec();
        match self {
            Mark::Overlay => {
                d.extend_from_slice(b"packed-copy ");
                d.extend_from_slice(&n.to_le_bytes());
            }
            Mark::DosStub => {
                // Only where a stub lies between the MZ header and the PE header.
                ensure_some(pe.is_some_and(|p| p >= 0x44 && d.len() >= p))?;
                d[0x40..0x44].copy_from_slice(&n.to_le_bytes());
            }
            Mark::TimeStamp => {
                let p = pe?;
                ensure_some(d.get(p..p + 4) == Some(b"PE\0\0") && d.len() >= p + 12)?;
                d[p + 8..p + 12].copy_from_slice(&n.to_le_bytes());
            }
            Mark::Padding => {
                let end = d.len().checked_sub(4)?;
                ensure_some(d[end..] == [0; 4])?;
                d[end..].copy_from_slice(&n.to_le_bytes());
            }
            Mark::Unchanged => {}
        }
        Some(d)
    }
}

fn ensure_some(ok: bool) -> Option<()> {
    ok.then_some(())
}

/// One source and its copies in the corpus.
pub(super) struct Entry {
    /// The source's file name, also the name of its subdirectory.
    pub(super) name: String,
    pub(super) mark: Mark,
    pub(super) copies: usize,
    /// Bytes of all its copies.
    pub(super) bytes: u64,
}

impl Entry {
    /// From clamav-testfiles (found by clamscan), not a upx-packed program.
    pub(super) fn is_testfile(&self) -> bool {
        self.name != UPX_DIR
    }
}

pub(super) struct Corpus {
    /// The directory holding one subdirectory per entry and nothing else.
    pub(super) dir: PathBuf,
    pub(super) entries: Vec<Entry>,
    /// upx's version line, or why no programs were packed.
    pub(super) upx: String,
    pub(super) reused: bool,
}

impl Corpus {
    pub(super) fn files(&self) -> usize {
        self.entries.iter().map(|e| e.copies).sum()
    }
    pub(super) fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes).sum()
    }
    /// Copies of clamav-testfiles, each of which holds `clam.exe`.
    pub(super) fn expected(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.is_testfile())
            .map(|e| e.copies)
            .sum()
    }
    /// One line: files, bytes, copies per source and how they differ, upx.
    pub(super) fn describe(&self) -> String {
        let mut s = format!(
            "{} files, {:.0} MB: ",
            self.files(),
            self.bytes() as f64 / 1e6
        );
        let per: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.is_testfile())
            .map(|e| format!("{} x{} ({})", e.name, e.copies, e.mark.name()))
            .collect();
        s.push_str(&per.join(", "));
        match self.entries.iter().find(|e| !e.is_testfile()) {
            Some(e) => {
                let _ = write!(
                    s,
                    "; {} programs of /usr/bin packed by {}",
                    e.copies, self.upx
                );
            }
            None => {
                let _ = write!(s, "; no upx-packed programs ({})", self.upx);
            }
        }
        s
    }
}

/// The sources present in `TESTFILES`, in the order of `PACKED`, then the InstallShield ones by name.
fn sources() -> Result<Vec<PathBuf>> {
    let dir = Path::new(TESTFILES);
    let mut out: Vec<PathBuf> = PACKED
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    let mut installers: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{TESTFILES} (cargo xtask setup installs clamav-testfiles)"))?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".exe") && PACKED_PREFIXES.iter().any(|p| n.starts_with(p))
        })
        .map(|e| e.path())
        .collect();
    installers.sort();
    out.extend(installers);
    if out.is_empty() {
        bail!("no packed executables in {TESTFILES} (cargo xtask setup installs clamav-testfiles)");
    }
    Ok(out)
}

/// First line of `prog --version`, or `None` when it does not run.
fn version(prog: &str) -> Option<String> {
    let o = Command::new(prog)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    o.status
        .success()
        .then(|| out.lines().next().unwrap_or("").trim().to_string())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Copies asked for of a source of `size` bytes (see `FULL_COPIES_UP_TO`).
fn copies_of(size: u64, copies: usize) -> usize {
    if size <= FULL_COPIES_UP_TO {
        copies
    } else {
        (copies as u64 * FULL_COPIES_UP_TO / size).max(1) as usize
    }
}

/// For each source, the first mark whose copy clamscan (with `db`) finds, else `Unchanged`; every copy
/// is scanned in one clamscan run. Without clamscan, `Overlay` for all (said in the stamp).
fn probe(work: &Path, db: &Path, sources: &[(String, Vec<u8>)]) -> Result<Vec<Mark>> {
    let dir = work.join("probe");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (name, data) in sources {
        for m in MARKS {
            if let Some(d) = m.apply(data, 1) {
                std::fs::write(dir.join(format!("{}.{name}", m.name())), d)?;
            }
        }
    }
    let o = Command::new("clamscan")
        .args(["-i", "--no-summary", "-d"])
        .arg(db)
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .context("running clamscan to probe the copies")?;
    ensure!(
        matches!(o.status.code(), Some(0 | 1)),
        "clamscan on the probe copies in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let found: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_suffix(" FOUND")?.rsplit_once(": "))
        .map(|(path, _)| file_name(Path::new(path)))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(sources
        .iter()
        .map(|(name, _)| {
            MARKS
                .into_iter()
                .find(|m| found.contains(&format!("{}.{name}", m.name())))
                .unwrap_or(Mark::Unchanged)
        })
        .collect())
}

/// ELF programs of /usr/bin in `UPX_SIZES`, by name.
fn upx_candidates() -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir("/usr/bin") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && e.metadata().is_ok_and(|m| UPX_SIZES.contains(&m.len()))
        })
        .map(|e| e.path())
        .filter(|p| {
            let mut magic = [0u8; 4];
            std::fs::File::open(p)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\x7fELF"
        })
        .collect();
    v.sort();
    v
}

/// Packs up to `UPX_PROGRAMS` of the candidates into `out` (upx refuses some: skipped); their bytes.
fn pack_upx(out: &Path) -> Result<(usize, u64)> {
    std::fs::create_dir_all(out)?;
    let (mut n, mut bytes) = (0, 0);
    for p in upx_candidates() {
        if n == UPX_PROGRAMS {
            break;
        }
        let dst = out.join(file_name(&p));
        let st = Command::new("upx")
            .args(["-q", "-q", "-o"])
            .arg(&dst)
            .arg(&p)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running upx")?;
        if st.success() {
            n += 1;
            bytes += std::fs::metadata(&dst)?.len();
        } else {
            let _ = std::fs::remove_file(&dst);
        }
    }
    Ok((n, bytes))
}

/// The entries of a previous build with this stamp.
fn reuse(work: &Path, stamp: &str) -> Option<Vec<Entry>> {
    let text = std::fs::read_to_string(work.join("manifest")).ok()?;
    let mut lines = text.lines();
    if lines.next()? != stamp {
        return None;
    }
    let mut out = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        let [name, mark, copies, bytes] = f[..] else {
            return None;
        };
        let copies: usize = copies.parse().ok()?;
        // A removed copy would make the corpus smaller than its manifest says.
        let present = std::fs::read_dir(work.join("files").join(name))
            .ok()?
            .count();
        if present != copies {
            return None;
        }
        out.push(Entry {
            name: name.to_string(),
            mark: Mark::parse(mark).unwrap_or(Mark::Unchanged),
            copies,
            bytes: bytes.parse().ok()?,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// Builds the corpus (or reuses the cached one) in `work`: up to `copies` copies of each source, found by
/// clamscan with the database directory `db` (holding `CLAM_EXE_HSB`).
pub(super) fn build(work: &Path, db: &Path, copies: usize) -> Result<Corpus> {
    std::fs::create_dir_all(work)?;
    let work = work.canonicalize()?;
    let paths = sources()?;
    let clamscan = version("clamscan").unwrap_or_else(|| "no clamscan".into());
    let upx = version("upx");
    let upx_shown = upx.clone().unwrap_or_else(|| "`upx` not on PATH".into());
    let mut stamp = format!("v{LAYOUT} {copies} copies, {clamscan}, {upx_shown}:");
    for p in &paths {
        let m = std::fs::metadata(p)?;
        let _ = write!(stamp, " {} {} {}", file_name(p), m.len(), m.mtime());
    }
    let dir = work.join("files");
    if let Some(entries) = reuse(&work, &stamp) {
        return Ok(Corpus {
            dir,
            entries,
            upx: upx_shown,
            reused: true,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(work.join("manifest"));
    std::fs::create_dir_all(&dir)?;
    let t = std::time::Instant::now();
    let data: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| Ok((file_name(p), std::fs::read(p)?)))
        .collect::<Result<_>>()?;
    let marks = if version("clamscan").is_some() {
        probe(&work, db, &data)?
    } else {
        vec![Mark::Overlay; data.len()]
    };
    let mut entries = Vec::new();
    for ((name, src), mark) in data.iter().zip(marks) {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub)?;
        let n = if mark == Mark::Unchanged {
            1
        } else {
            copies_of(src.len() as u64, copies)
        };
        let mut bytes = 0;
        for i in 0..n {
            // Numbered from 1: the probe's copy 1 is the one clamscan was seen to find.
            let d = mark
                .apply(src, i as u32 + 1)
                .context("a probed mark no longer applies")?;
            bytes += d.len() as u64;
            std::fs::write(sub.join(format!("{:05}-{name}", i + 1)), d)?;
        }
        println!("    {name}: {n} copies ({}), {bytes} bytes", mark.name());
        entries.push(Entry {
            name: name.clone(),
            mark,
            copies: n,
            bytes,
        });
    }
    if upx.is_some() {
        let (n, bytes) = pack_upx(&dir.join(UPX_DIR))?;
        println!("    {UPX_DIR}: {n} programs packed by {upx_shown}, {bytes} bytes");
        entries.push(Entry {
            name: UPX_DIR.into(),
            mark: Mark::Unchanged,
            copies: n,
            bytes,
        });
    }
    println!(
        "    written in {:.0} s into {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let mut manifest = format!("{stamp}\n");
    for e in &entries {
        let _ = writeln!(
            manifest,
            "{}\t{}\t{}\t{}",
            e.name,
            e.mark.name(),
            e.copies,
            e.bytes
        );
    }
    std::fs::write(work.join("manifest"), manifest)?;
    Ok(Corpus {
        dir,
        entries,
        upx: upx_shown,
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE header at 0x80 behind a DOS stub, as most linkers write it.
    fn pe() -> Vec<u8> {
        let mut d = vec![0u8; 0x100];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c] = 0x80;
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        d
    }

    #[test]
    fn each_mark_writes_the_copy_number_in_its_own_place() {
        let src = pe();
        let o = Mark::Overlay.apply(&src, 7).unwrap();
        assert_eq!(
            (&o[..0x100], &o[0x100..]),
            (&src[..], &b"packed-copy \x07\0\0\0"[..])
        );
        let s = Mark::DosStub.apply(&src, 7).unwrap();
        assert_eq!((s.len(), &s[0x40..0x44]), (0x100, &[7u8, 0, 0, 0][..]));
        let t = Mark::TimeStamp.apply(&src, 7).unwrap();
        assert_eq!((t.len(), &t[0x88..0x8c]), (0x100, &[7u8, 0, 0, 0][..]));
        let p = Mark::Padding.apply(&src, 7).unwrap();
        assert_eq!((p.len(), &p[0xfc..]), (0x100, &[7u8, 0, 0, 0][..]));
        assert!(Mark::Padding.apply(&p, 8).is_none());
        assert_eq!(Mark::Unchanged.apply(&src, 7).unwrap(), src);
    }

    #[test]
    fn a_pe_header_inside_the_dos_header_has_no_stub_to_mark() {
        let mut d = pe();
        d[0x3c] = 0x10;
        d[0x10..0x14].copy_from_slice(b"PE\0\0");
        assert!(Mark::DosStub.apply(&d, 1).is_none());
        assert!(Mark::TimeStamp.apply(&d, 1).is_some());
        assert!(Mark::TimeStamp.apply(b"MZ", 1).is_none());
    }

    #[test]
    fn large_sources_get_copies_for_their_share_of_bytes() {
        assert_eq!(copies_of(1560, 1000), 1000);
        assert_eq!(copies_of(FULL_COPIES_UP_TO * 10, 1000), 100);
        assert_eq!(copies_of(u64::MAX / 2000, 1000), 1);
    }

    #[test]
    fn marks_are_named_back_and_forth() {
        for m in MARKS.into_iter().chain([Mark::Unchanged]) {
            assert_eq!(Mark::parse(m.name()), Some(m));
        }
    }
}
