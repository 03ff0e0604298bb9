//! The archive corpus of `bench engine --parts archives`: files of this machine (documentation, Python and
//! Perl libraries, C headers, manual pages, message catalogues) packed into zip, tar.gz, tar.xz and 7z
//! archives, three of which also carry an EICAR member written at run time: a zip, a tar.gz (holding it
//! inside a zip: the nested case) and a tar.xz. A planted member is always the archive's last, so a scanner
//! that stops at the first match has still read everything else.
//!
//! Packed by the tools users pack with (Info-ZIP `zip`, GNU `tar` with `gzip` and `xz`, p7zip's `7z`, all
//! in `cargo xtask setup`'s Debian packages), not by the crates the engine unpacks with, so the engine
//! reads archives it did not write. Cached under target/bench/engine-archives and rebuilt only when its
//! stamp changes: the size asked for, the sources, and the count, bytes and newest mtime of the files
//! selected from them. Sized so that no clamscan limit is reached (see the constants). Reads the sources,
//! writes only under its own directory, scans nothing.

use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The corpus is cut into this many archives of about equal packed size (more when a cap cuts them short).
const ARCHIVES: usize = 16;
/// Hard stop on the number of archives, when the sources hold mostly tiny files.
const MAX_ARCHIVES: usize = 24;
/// Files scanned inside one archive, a compressed member counted twice (itself and what it inflates to):
/// half of clamscan's MaxFiles (10000), which counts every file scanned inside one archive, nested ones too.
const MAX_SCANNED: usize = 5_000;
/// Unpacked bytes of one archive: under MaxScanSize (400M) even counted twice (clamscan counts a tar.gz's
/// inflated tar, then each member again).
const MAX_UNPACKED: u64 = 100_000_000;
/// Largest source file packed: well under MaxFileSize (100M) and MaxEmbeddedPE (40M).
const MAX_MEMBER: u64 = 16 << 20;
/// Version of the corpus's layout, in the stamp.
const LAYOUT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Zip,
    TarGz,
    TarXz,
    SevenZ,
}

const FORMATS: [Format; 4] = [Format::Zip, Format::TarGz, Format::TarXz, Format::SevenZ];

impl Format {
    pub(super) fn ext(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
            Format::TarXz => "tar.xz",
            Format::SevenZ => "7z",
        }
    }
    /// A first guess of unpacked/packed for files not already compressed, corrected as archives are built.
    fn ratio_guess(self) -> f64 {
        match self {
            Format::Zip | Format::TarGz => 3.5,
            Format::TarXz | Format::SevenZ => 4.5,
        }
    }
    fn index(self) -> usize {
        FORMATS.iter().position(|&f| f == self).unwrap_or(0)
    }
}

/// An EICAR member added at the end of an archive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plant {
    /// `eicar/eicar.com`.
    Direct,
    /// `nested/eicar.zip`, a zip holding `eicar.com`.
    NestedZip,
}

impl Plant {
    fn member(self) -> &'static str {
        match self {
            Plant::Direct => "eicar/eicar.com",
            Plant::NestedZip => "nested/eicar.zip",
        }
    }
    /// Which archives (by index) carry one: the first zip, tar.gz and tar.xz.
    fn of(i: usize) -> Option<Plant> {
        match i {
            0 | 2 => Some(Plant::Direct),
            1 => Some(Plant::NestedZip),
            _ => None,
        }
    }
}

pub(super) struct Archive {
    pub(super) name: String,
    pub(super) format: Format,
    pub(super) bytes: u64,
    /// Entries in the archive (a nested zip counts once).
    pub(super) members: usize,
    /// Sum of the entries' sizes.
    pub(super) unpacked: u64,
    /// Holds an EICAR member.
    pub(super) planted: bool,
}

pub(super) struct Corpus {
    /// The directory holding the archives and nothing else.
    pub(super) dir: PathBuf,
    pub(super) archives: Vec<Archive>,
    /// The source directories found.
    pub(super) sources: Vec<PathBuf>,
    /// Members that are a second copy of a source file (the sources ran out before the size asked for).
    pub(super) copies: usize,
    pub(super) reused: bool,
}

impl Corpus {
    pub(super) fn bytes(&self) -> u64 {
        self.archives.iter().map(|a| a.bytes).sum()
    }
    pub(super) fn members(&self) -> usize {
        self.archives.iter().map(|a| a.members).sum()
    }
    pub(super) fn unpacked(&self) -> u64 {
        self.archives.iter().map(|a| a.unpacked).sum()
    }
    pub(super) fn planted(&self) -> Vec<&str> {
        self.archives
            .iter()
            .filter(|a| a.planted)
            .map(|a| a.name.as_str())
            .collect()
    }
    /// One line: archives per format, sizes, members, sources.
    pub(super) fn describe(&self) -> String {
        let per: Vec<String> = FORMATS
            .iter()
            .map(|&f| {
                let n = self.archives.iter().filter(|a| a.format == f).count();
                format!("{n} {}", f.ext())
            })
            .collect();
        let sources: Vec<String> = self
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut s = format!(
            "{} archives ({}), {:.0} MB, {} members ({} of them EICAR, in {}; the tar.gz's inside a zip), \
             {:.0} MB unpacked; packed from {}",
            self.archives.len(),
            per.join(", "),
            self.bytes() as f64 / 1e6,
            self.members(),
            self.planted().len(),
            self.planted().join(", "),
            self.unpacked() as f64 / 1e6,
            sources.join(", "),
        );
        if self.copies > 0 {
            let _ = write!(s, " ({} members are second copies)", self.copies);
        }
        s
    }
}

/// A file to pack: its path without the leading `/` (archives hold relative names) and its size.
struct Source {
    rel: String,
    size: u64,
}

impl Source {
    /// Already compressed by its name (manual pages, changelogs, images, wheels): it packs at about 1:1
    /// and the scanners unpack it again.
    fn compressed(&self) -> bool {
        const EXT: [&str; 14] = [
            ".gz", ".bz2", ".xz", ".zst", ".lzma", ".zip", ".jar", ".whl", ".egg", ".7z", ".png",
            ".jpg", ".gif", ".deb",
        ];
        EXT.iter().any(|e| self.rel.ends_with(e))
    }
}

/// The directories named, a `*` in the last component expanded, symlinks resolved; missing ones, repeats and
/// ones inside another named one (walked with it) dropped.
fn expand(patterns: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for p in patterns {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        match (name.as_deref().and_then(|n| n.split_once('*')), p.parent()) {
            (Some((pre, post)), Some(parent)) => {
                let Ok(rd) = std::fs::read_dir(parent) else {
                    continue;
                };
                let mut found: Vec<PathBuf> = rd
                    .flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)
                    })
                    .map(|e| e.path())
                    .collect();
                found.sort();
                dirs.extend(found);
            }
            _ => dirs.push(p.clone()),
        }
    }
    let mut real: Vec<PathBuf> = Vec::new();
    for d in dirs {
        match d.canonicalize() {
            Ok(c) if c.is_dir() && !real.contains(&c) => real.push(c),
            _ => {}
        }
    }
    let inside = |c: &PathBuf| real.iter().any(|o| o != c && c.starts_with(o));
    real.iter().filter(|c| !inside(c)).cloned().collect()
}

/// Regular files under `dirs`, sorted by path within each directory, in the order of `dirs`; with
/// names every packer takes literally (UTF-8, no newline, no wildcard characters) and sizes in
/// (0, MAX_MEMBER]. Also the newest mtime, for the stamp.
fn select(dirs: &[PathBuf]) -> (Vec<Source>, i64) {
    fn walk(dir: &Path, out: &mut Vec<Source>, newest: &mut i64) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            if ft.is_dir() {
                walk(&path, out, newest);
                continue;
            }
            let (Ok(meta), Some(s)) = (e.metadata(), path.to_str()) else {
                continue;
            };
            let plain = !s.contains(['\n', '\r', '*', '?', '[', ']', '\\']);
            let size = meta.len();
            if ft.is_file()
                && plain
                && size > 0
                && size <= MAX_MEMBER
                && std::fs::File::open(&path).is_ok()
            {
                *newest = (*newest).max(meta.mtime());
                out.push(Source {
                    rel: s.trim_start_matches('/').to_string(),
                    size,
                });
            }
        }
    }
    let (mut out, mut newest) = (Vec::new(), 0);
    for d in dirs {
        walk(d, &mut out, &mut newest);
    }
    (out, newest)
}

/// Runs a packer; its failure (any non-zero exit) ends the bench.
fn pack_step(cmd: &mut Command, stdin: Option<&Path>) -> Result<()> {
    cmd.stdout(Stdio::null());
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p)?);
    }
    let st = cmd
        .status()
        .with_context(|| format!("running {cmd:?} (cargo xtask setup installs the packers)"))?;
    ensure!(st.success(), "{cmd:?} failed: {st}");
    Ok(())
}

/// Packs the files named in `list` (relative to `/`), then the planted member from `stage`, into `out`.
fn pack(format: Format, out: &Path, list: &Path, stage: &Path, plant: Option<Plant>) -> Result<()> {
    match format {
        Format::Zip => {
            pack_step(
                Command::new("zip")
                    .args(["-q", "-X", "-@"])
                    .arg(out)
                    .current_dir("/"),
                Some(list),
            )?;
            if let Some(p) = plant {
                pack_step(
                    Command::new("zip")
                        .args(["-q", "-X"])
                        .arg(out)
                        .arg(p.member())
                        .current_dir(stage),
                    None,
                )?;
            }
        }
        Format::TarGz | Format::TarXz => {
            let mut cmd = Command::new("tar");
            cmd.arg("-c")
                .arg(if format == Format::TarGz { "-z" } else { "-J" })
                .arg("-f")
                .arg(out)
                .args(["-C", "/", "-T"])
                .arg(list);
            if let Some(p) = plant {
                cmd.arg("-C").arg(stage).arg(p.member());
            }
            pack_step(&mut cmd, None)?;
        }
        Format::SevenZ => {
            ensure!(plant.is_none(), "no EICAR member is planted in a 7z");
            pack_step(
                Command::new("7z")
                    .args(["a", "-t7z", "-bd", "-bso0", "-bsp0", "-mmt=2"])
                    .arg(out)
                    .arg(format!("@{}", list.display()))
                    .current_dir("/"),
                None,
            )?;
        }
    }
    Ok(())
}

/// Writes the EICAR members into `stage`: `eicar/eicar.com` and `nested/eicar.zip` holding it.
fn stage_eicar(stage: &Path) -> Result<()> {
    std::fs::create_dir_all(stage.join("eicar"))?;
    std::fs::create_dir_all(stage.join("nested"))?;
    std::fs::write(stage.join("eicar/eicar.com"), crate::demo::eicar())?;
    let nested = stage.join("nested/eicar.zip");
    let _ = std::fs::remove_file(&nested);
    pack_step(
        Command::new("zip")
            .args(["-q", "-X"])
            .arg(&nested)
            .arg("eicar.com")
            .current_dir(stage.join("eicar")),
        None,
    )
}

fn manifest_line(a: &Archive) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        a.name,
        a.format.index(),
        a.members,
        a.unpacked,
        u8::from(a.planted)
    )
}

/// The archives of a previous build with this stamp, if all are still there with their sizes.
fn reuse(work: &Path, stamp: &str) -> Option<(Vec<Archive>, usize)> {
    let text = std::fs::read_to_string(work.join("manifest")).ok()?;
    let mut lines = text.lines();
    if lines.next()? != stamp {
        return None;
    }
    let copies = lines.next()?.parse().ok()?;
    let mut out = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        let [name, format, members, unpacked, planted] = f[..] else {
            return None;
        };
        let bytes = std::fs::metadata(work.join("archives").join(name))
            .ok()?
            .len();
        out.push(Archive {
            name: name.to_string(),
            format: *FORMATS.get(format.parse::<usize>().ok()?)?,
            bytes,
            members: members.parse().ok()?,
            unpacked: unpacked.parse().ok()?,
            planted: planted == "1",
        });
    }
    (!out.is_empty()).then_some((out, copies))
}

/// A short name for an archive from its first member's directory (`usr-share-doc-adduser`).
fn slug(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').collect();
    let dir = &parts[..parts.len().saturating_sub(1)];
    let s: String = dir
        .iter()
        .take(4)
        .copied()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.chars().take(40).collect()
}

/// Builds the corpus (or reuses the cached one) in `work`: archives of about `target_mb` MB in total.
pub(super) fn build(work: &Path, patterns: &[PathBuf], target_mb: u64) -> Result<Corpus> {
    std::fs::create_dir_all(work)?;
    let work = work.canonicalize()?;
    let sources = expand(patterns);
    let (files, newest) = select(&sources);
    if files.is_empty() {
        bail!("no files to pack under {patterns:?}");
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let stamp = format!(
        "v{LAYOUT} {target_mb} MB from {sources:?}: {} files, {total} bytes, newest {newest}",
        files.len()
    );
    let dir = work.join("archives");
    if let Some((archives, copies)) = reuse(&work, &stamp) {
        return Ok(Corpus {
            dir,
            archives,
            sources,
            copies,
            reused: true,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(work.join("manifest"));
    std::fs::create_dir_all(&dir)?;
    let stage = work.join("stage");
    stage_eicar(&stage)?;
    let list = work.join("list");

    let target = target_mb as f64 * 1e6;
    // Per format: packed bytes built so far against their estimate, to correct the next estimate.
    let mut seen = [(0.0f64, 0.0f64); 4];
    let (mut next, mut packed, mut copies) = (0usize, 0u64, 0usize);
    let mut archives: Vec<Archive> = Vec::new();
    let t = std::time::Instant::now();
    // Stop when what is left is under a quarter of an archive's share, rather than pack a tiny last one.
    let enough = target - target / ARCHIVES as f64 / 4.0;
    while (packed as f64) < enough && archives.len() < MAX_ARCHIVES {
        let i = archives.len();
        let format = FORMATS[i % FORMATS.len()];
        // Equal shares of what is left, so that an archive off its estimate is made up by the next ones.
        let share = (target - packed as f64) / ARCHIVES.saturating_sub(i).max(1) as f64;
        let (actual, estimated) = seen[format.index()];
        let correction = if estimated > 0.0 {
            actual / estimated
        } else {
            1.0
        };
        let (mut names, mut unpacked, mut estimate) = (String::new(), 0u64, 0.0);
        let (mut members, mut scanned) = (0, 0);
        while members < files.len() && estimate < share {
            let f = &files[next % files.len()];
            let cost = if f.compressed() { 2 } else { 1 };
            if members > 0 && (scanned + cost > MAX_SCANNED || unpacked + f.size > MAX_UNPACKED) {
                break;
            }
            if next >= files.len() {
                copies += 1;
            }
            next += 1;
            names.push_str(&f.rel);
            names.push('\n');
            unpacked += f.size;
            members += 1;
            scanned += cost;
            let ratio = if f.compressed() {
                1.0
            } else {
                format.ratio_guess()
            };
            estimate += f.size as f64 / ratio * correction;
        }
        let first = names.lines().next().unwrap_or("");
        let name = format!("{i:02}-{}.{}", slug(first), format.ext());
        std::fs::write(&list, &names)?;
        let plant = Plant::of(i);
        let out = dir.join(&name);
        pack(format, &out, &list, &stage, plant)?;
        if let Some(p) = plant {
            members += 1;
            unpacked += std::fs::metadata(stage.join(p.member()))?.len();
        }
        let bytes = std::fs::metadata(&out)?.len();
        packed += bytes;
        let s = &mut seen[format.index()];
        *s = (s.0 + bytes as f64, s.1 + estimate / correction);
        println!(
            "    {name}: {members} members, {:.1} MB unpacked, {:.1} MB packed",
            unpacked as f64 / 1e6,
            bytes as f64 / 1e6
        );
        archives.push(Archive {
            name,
            format,
            bytes,
            members,
            unpacked,
            planted: plant.is_some(),
        });
    }
    let _ = std::fs::remove_file(&list);
    // The EICAR files are needed only inside the archives.
    let _ = std::fs::remove_dir_all(&stage);
    println!(
        "    packed in {:.0} s into {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let mut manifest = format!("{stamp}\n{copies}\n");
    for a in &archives {
        manifest.push_str(&manifest_line(a));
    }
    std::fs::write(work.join("manifest"), manifest)?;
    Ok(Corpus {
        dir,
        archives,
        sources,
        copies,
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plants_are_in_the_first_zip_tar_gz_and_tar_xz() {
        let planted: Vec<(Format, Option<&str>)> = (0..FORMATS.len())
            .map(|i| (FORMATS[i], Plant::of(i).map(Plant::member)))
            .collect();
        assert_eq!(
            planted,
            [
                (Format::Zip, Some("eicar/eicar.com")),
                (Format::TarGz, Some("nested/eicar.zip")),
                (Format::TarXz, Some("eicar/eicar.com")),
                (Format::SevenZ, None),
            ]
        );
    }

    #[test]
    fn slug_names_the_first_members_directory() {
        assert_eq!(
            slug("usr/share/doc/adduser/copyright"),
            "usr-share-doc-adduser"
        );
        assert_eq!(slug("usr/include/c++/12/x"), "usr-include-c---12");
    }
}
