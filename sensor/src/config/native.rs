//! The sensor's own TOML format: one `[run]` table whose snake_case keys mirror [`super::RunConfig`]
//! (see the example in the module doc of `config`). Unknown keys and wrong types are errors naming the
//! line and the key; relative paths are taken from the working directory, like the flags.

use super::checks::uid_of;
use super::{size, Action, FileSettings, Mode};
use crate::audit::rotate::MIN_MAX_BYTES;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    run: Option<Run>,
    /// `sensor db update`'s table (sensor/src/update/settings.rs reads it); `sensor run` ignores it, so that
    /// one file can configure both.
    #[allow(dead_code)]
    update: Option<toml::Table>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum ModeName {
    Prevent,
    NotifyOnly,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Run {
    mode: Option<ModeName>,
    databases: Vec<PathBuf>,
    include: Vec<Spanned<PathBuf>>,
    exclude: Vec<Spanned<PathBuf>>,
    mount_paths: Vec<Spanned<PathBuf>>,
    recursive: Option<bool>,
    exclude_uids: Vec<u32>,
    exclude_users: Vec<Spanned<String>>,
    threads: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    deadline_secs: Option<Spanned<f64>>,
    deny_on_error: Option<bool>,
    max_file_size: Option<Size>,
    log: Option<PathBuf>,
    move_to: Option<Spanned<PathBuf>>,
    copy_to: Option<Spanned<PathBuf>>,
    remove: Option<Spanned<bool>>,
    status_file: Option<PathBuf>,
    open_prefilter: Option<bool>,
    dir_moves: Option<bool>,
    socket: Option<PathBuf>,
    cvd_certs_directory: Option<PathBuf>,
    /// clamd's protocol (`[run.clamd]`).
    clamd: Option<super::protocol::ProtocolToml>,
    metrics: Option<Spanned<String>>,
    metrics_allow_remote: Option<bool>,
    audit: Option<bool>,
    audit_dir: Option<PathBuf>,
    audit_max_file_size: Option<Spanned<Size>>,
    audit_max_age_hours: Option<Spanned<f64>>,
    audit_keep_files: Option<Spanned<usize>>,
    audit_retain_days: Option<Spanned<f64>>,
    syslog: Option<Spanned<String>>,
    syslog_facility: Option<Spanned<String>>,
    journald: Option<bool>,
}

/// `max_file_size = 5242880` or `max_file_size = "5M"`.
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: a number of bytes or a string like \"5M\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                size::parse(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether `text` is meant as TOML: it parses as a non-empty TOML document, or (broken TOML) its first
/// significant line is a `[table]` header or a `key = value`, which clamd.conf never has.
pub fn looks_like_toml(text: &str) -> bool {
    if let Ok(t) = text.parse::<toml::Table>() {
        return !t.is_empty();
    }
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if first.starts_with('[') {
        return true;
    }
    let key_end = first
        .find(|c: char| {
            !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '"' || c == '.')
        })
        .unwrap_or(first.len());
    key_end > 0 && first[key_end..].trim_start().starts_with('=')
}

/// 1-based line of byte offset `at`, and the key written on that line (the text before `=`, or the
/// `[header]`).
fn line_and_key(text: &str, at: usize) -> (usize, String) {
    let at = at.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let here = text[start..end].trim();
    if here.starts_with('[') && !here.contains('=') {
        return (line, here.to_string());
    }
    // The key is on this line, or (an element of a multi-line array) on the nearest line above that
    // has one.
    let key = text[..end]
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .unwrap_or_else(|| here.to_string());
    (line, key)
}

pub fn parse(file: &Path, text: &str) -> Result<FileSettings, String> {
    let f = file.display();
    let at = |span: std::ops::Range<usize>, what: &str| {
        let (line, key) = line_and_key(text, span.start);
        format!("{f}:{line}: {key}: {what}")
    };
    let root: Root = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => at(span, e.message().trim()),
        None => format!("{f}: {}", e.message().trim()),
    })?;
    let run = root.run.unwrap_or_default();
    let origin = |p: &Spanned<PathBuf>| {
        let (line, key) = line_and_key(text, p.span().start);
        (p.get_ref().clone(), format!("{f}:{line}: {key}"))
    };
    let mut s = FileSettings {
        mode: run.mode.map(|m| match m {
            ModeName::Prevent => Mode::Prevent,
            ModeName::NotifyOnly => Mode::NotifyOnly,
        }),
        databases: run.databases,
        include: run.include.iter().map(origin).collect(),
        exclude: run.exclude.iter().map(origin).collect(),
        mount_paths: run.mount_paths.iter().map(origin).collect(),
        recursive: run.recursive,
        exclude_uids: run.exclude_uids,
        deny_on_error: run.deny_on_error,
        max_file_size: run.max_file_size.map(|s| s.0),
        log: run.log,
        status_file: run.status_file,
        open_prefilter: run.open_prefilter,
        dir_moves: run.dir_moves,
        socket: run.socket,
        certs_dir: run.cvd_certs_directory,
        metrics_allow_remote: run.metrics_allow_remote,
        audit: run.audit,
        audit_dir: run.audit_dir,
        journald: run.journald,
        ..FileSettings::default()
    };
    if let Some(c) = run.clamd {
        s.protocol = c.into_raw().map_err(|e| format!("{f}: [run.clamd] {e}"))?;
    }
    if let Some(m) = &run.metrics {
        let (line, key) = line_and_key(text, m.span().start);
        s.metrics = Some((m.get_ref().clone(), format!("{f}:{line}: {key}")));
    }
    for u in &run.exclude_users {
        match uid_of(u.get_ref()).map_err(|e| at(u.span(), &e))? {
            Some(uid) => s.exclude_uids.push(uid),
            None => return Err(at(u.span(), &format!("no such user '{}'", u.get_ref()))),
        }
    }
    if let Some(m) = &run.audit_max_file_size {
        let v = m.get_ref().0;
        if v < MIN_MAX_BYTES {
            // A size below one record made the writer rotate without end.
            return Err(at(
                m.span(),
                &format!(
                    "must be at least {}K (one record can be tens of KiB), got {v} bytes",
                    MIN_MAX_BYTES >> 10
                ),
            ));
        }
        s.audit_max_file_size = Some(v);
    }
    if let Some(h) = &run.audit_max_age_hours {
        let v = *h.get_ref();
        if !(v > 0.0 && v <= 24.0 * 3650.0) {
            return Err(at(
                h.span(),
                "must be more than 0 hours and at most 10 years",
            ));
        }
        s.audit_max_age = Some(std::time::Duration::from_secs_f64(v * 3600.0));
    }
    if let Some(k) = &run.audit_keep_files {
        if *k.get_ref() == 0 {
            return Err(at(k.span(), "must be at least 1"));
        }
        s.audit_keep_files = Some(*k.get_ref());
    }
    if let Some(d) = &run.audit_retain_days {
        let v = *d.get_ref();
        if !(v > 0.0 && v <= 3650.0) {
            return Err(at(d.span(), "must be more than 0 days and at most 3650"));
        }
        s.audit_retain = Some(std::time::Duration::from_secs_f64(v * 86400.0));
    }
    if let Some(t) = &run.syslog {
        super::checks::check_syslog(t.get_ref()).map_err(|e| at(t.span(), &e))?;
        s.syslog = Some(t.get_ref().clone());
    }
    if let Some(f) = &run.syslog_facility {
        super::checks::check_facility(f.get_ref()).map_err(|e| at(f.span(), &e))?;
        s.syslog_facility = Some(f.get_ref().clone());
    }
    if let Some(t) = &run.threads {
        super::checks::check_threads(*t.get_ref()).map_err(|e| at(t.span(), &e))?;
        s.threads = Some(*t.get_ref());
    }
    if let Some(q) = &run.queue_size {
        super::checks::check_queue_size(*q.get_ref()).map_err(|e| at(q.span(), &e))?;
        s.queue_size = Some(*q.get_ref());
    }
    if let Some(d) = &run.deadline_secs {
        super::checks::check_deadline(*d.get_ref()).map_err(|e| at(d.span(), &e))?;
        s.deadline = Some(*d.get_ref());
    }
    let mut actions = Vec::new();
    if let Some(m) = &run.move_to {
        actions.push((Action::Move(m.get_ref().clone()), m.span()));
    }
    if let Some(c) = &run.copy_to {
        actions.push((Action::Copy(c.get_ref().clone()), c.span()));
    }
    if let Some(r) = run.remove.as_ref().filter(|r| *r.get_ref()) {
        actions.push((Action::Remove, r.span()));
    }
    if let Some((_, span)) = actions.get(1) {
        return Err(at(
            span.clone(),
            "move_to, copy_to and remove = true exclude each other: keep one",
        ));
    }
    if let Some((action, span)) = actions.pop() {
        let (line, key) = line_and_key(text, span.start);
        s.action = Some((action, format!("{f}:{line}: {key}")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<FileSettings, String> {
        parse(Path::new("/etc/sensor.toml"), text)
    }

    /// The example in `config`'s module doc, taken from the source so the two cannot drift apart.
    fn doc_example() -> String {
        let src = include_str!("mod.rs");
        let body = src
            .split("//! ```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("//! ```\n").next())
            .expect("mod.rs documents a ```toml example");
        body.lines()
            .map(|l| {
                l.strip_prefix("//! ")
                    .or(l.strip_prefix("//!"))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_documented_example_parses() {
        let text = doc_example();
        assert!(looks_like_toml(&text));
        let s = p(&text).unwrap();
        assert!(!s.clamd);
        assert_eq!(s.mode, Some(Mode::Prevent));
        assert_eq!(s.databases, [PathBuf::from("/var/lib/clamav")]);
        let paths =
            |v: &Vec<(PathBuf, String)>| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(&s.include),
            [PathBuf::from("/home"), PathBuf::from("/srv")]
        );
        assert_eq!(paths(&s.exclude), [PathBuf::from("/home/build/cache")]);
        assert!(s.mount_paths.is_empty());
        assert_eq!(s.recursive, Some(true));
        assert_eq!(s.exclude_uids, [998, 0]);
        assert_eq!(s.threads, Some(4));
        assert_eq!(s.queue_size, Some(4096));
        assert_eq!(s.deadline, Some(5.0));
        assert_eq!(s.deny_on_error, Some(false));
        assert_eq!(s.max_file_size, Some(5 << 20));
        assert_eq!(s.log, Some(PathBuf::from("/var/log/sensor.log")));
        assert_eq!(
            s.action.as_ref().map(|a| &a.0),
            Some(&Action::Move(PathBuf::from("/var/lib/sensor/quarantine")))
        );
        assert_eq!(
            s.status_file,
            Some(PathBuf::from("/run/sensor/status.json"))
        );
        assert_eq!(s.socket, Some(PathBuf::from("/run/sensor/control.sock")));
        assert_eq!(s.certs_dir, Some(PathBuf::from("/etc/clamav/certs")));
        assert_eq!(
            s.metrics.as_ref().map(|m| m.0.as_str()),
            Some("127.0.0.1:9464")
        );
        assert!(s.metrics.as_ref().unwrap().1.ends_with(": metrics"));
        assert_eq!(s.metrics_allow_remote, None);
        assert!(
            s.include[0].1.starts_with("/etc/sensor.toml:"),
            "{}",
            s.include[0].1
        );
        assert!(s.include[0].1.ends_with(": include"), "{}", s.include[0].1);
    }

    #[test]
    fn every_key_and_both_size_forms() {
        let s = p("[run]\nmode = \"notify-only\"\nmount_paths = [\"/mnt\"]\nrecursive = false\n\
                   max_file_size = 1024\ndeadline_secs = 0.5\ncopy_to = \"/q\"\ndeny_on_error = true\n")
        .unwrap();
        assert_eq!(s.mode, Some(Mode::NotifyOnly));
        assert_eq!(s.mount_paths[0].0, PathBuf::from("/mnt"));
        assert_eq!(s.mount_paths[0].1, "/etc/sensor.toml:3: mount_paths");
        assert_eq!(s.recursive, Some(false));
        assert_eq!(s.max_file_size, Some(1024));
        assert_eq!(s.deadline, Some(0.5));
        assert_eq!(s.deny_on_error, Some(true));
        assert_eq!(s.action.unwrap().0, Action::Copy(PathBuf::from("/q")));
        let s = p("[run]\nremove = true\ndeadline_secs = 7\n").unwrap();
        assert_eq!(s.action.unwrap().0, Action::Remove);
        assert_eq!(s.deadline, Some(7.0));
        assert!(p("[run]\nremove = false\n").unwrap().action.is_none());
        let s = p("[run]\naudit_max_file_size = \"64K\"\n").unwrap();
        assert_eq!(s.audit_max_file_size, Some(64 << 10));
        // An empty [run] or no [run] at all: nothing set.
        assert!(p("[run]\n").unwrap().include.is_empty());
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            ("[run]\ninclude = [\"/a\"]\nthreds = 4\n", "/etc/sensor.toml:3: threds: unknown field `threds`"),
            ("[run]\n\nthreads = \"four\"\n", "/etc/sensor.toml:3: threads: invalid type"),
            ("[run]\nthreads = 0\n", "/etc/sensor.toml:2: threads: must be at least 1"),
            // A count the kernel refuses panicked at start and exited 2.
            ("[run]\nthreads = 100000\n", "/etc/sensor.toml:2: threads: must be at most 1024, got 100000"),
            ("[run]\nqueue_size = 1000000000000\n", "/etc/sensor.toml:2: queue_size: must be at least 16 and at most 1048576"),
            ("[run]\nqueue_size = 8\n", "/etc/sensor.toml:2: queue_size: must be at least 16"),
            ("[run]\ndeadline_secs = 0\n", "/etc/sensor.toml:2: deadline_secs: must be more than 0"),
            ("[run]\ndeadline_secs = 900\n", "/etc/sensor.toml:2: deadline_secs: must be more than 0"),
            ("[run]\nmode = \"block\"\n", "/etc/sensor.toml:2: mode: unknown variant `block`"),
            ("[run]\nmax_file_size = \"5X\"\n", "/etc/sensor.toml:2: max_file_size: expected a size"),
            ("[run]\nmax_file_size = -1\n", "/etc/sensor.toml:2: max_file_size: a size cannot be negative"),
            // A rotation size below one record is refused (it used to make files without end).
            ("[run]\naudit_max_file_size = \"0\"\n", "/etc/sensor.toml:2: audit_max_file_size: must be at least 64K"),
            ("[run]\n\naudit_max_file_size = 100\n", "/etc/sensor.toml:3: audit_max_file_size: must be at least 64K"),
            ("[run]\naudit_max_file_size = \"63K\"\n", "/etc/sensor.toml:2: audit_max_file_size: must be at least 64K"),
            ("[run]\nrecursive = \"yes\"\n", "/etc/sensor.toml:2: recursive: invalid type"),
            ("[run]\nexclude_users = [\"no-such-user-sensor-test\"]\n", "/etc/sensor.toml:2: exclude_users: no such user 'no-such-user-sensor-test'"),
            ("[run]\nmove_to = \"/q\"\ncopy_to = \"/r\"\n", "/etc/sensor.toml:3: copy_to: move_to, copy_to and remove = true exclude each other"),
            ("[runn]\nthreads = 1\n", "/etc/sensor.toml:1: [runn]: unknown field `runn`"),
            ("[run]\nthreads = \n", "/etc/sensor.toml:2: threads: "),
            ("[run]\ninclude = [\n  \"/a\",\n  7,\n]\n", "/etc/sensor.toml:4: include: invalid type"),
        ];
        for (text, want) in cases {
            let e = match p(text) {
                Err(e) => e,
                Ok(_) => panic!("{text:?} was accepted"),
            };
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn format_detection() {
        assert!(looks_like_toml("[run]\nthreads = 2\n"));
        assert!(
            looks_like_toml("# c\n[run]\nthreads = \n"),
            "broken TOML is still TOML"
        );
        assert!(looks_like_toml("threads = oops"));
        assert!(!looks_like_toml(""));
        assert!(!looks_like_toml("# only comments\n"));
        assert!(!looks_like_toml(
            "LocalSocket /run/clamd.ctl\nOnAccessPrevention yes\n"
        ));
        assert!(!looks_like_toml("VirusEvent /bin/x a=b\n"));
        assert!(!looks_like_toml("Example\n"));
    }
}
