//! clamd.conf, as documented in `clamd.conf(5)` (ClamAV 1.4): one `Option Value` per line, `#` starts a
//! comment line, option names are case sensitive, values are BOOL (yes/no, true/false, 1/0), NUMBER,
//! SIZE (bytes, K or M suffix) or STRING. The same file configures clamd, so every option clamd 1.4
//! documents is accepted; what means something here: the on-access options, `DatabaseDirectory`, `LogFile`,
//! `CVDCertsDirectory` (ClamAV 1.5's: what detached `.sign` files chain to), the protocol server's options
//! (`LocalSocket`, `TCPSocket`, `MaxThreads`, `StreamMaxLength`, the timeouts, `ExcludePath`, ...:
//! `protocol`),
//! the scan limits and format switches (`MaxScanSize`, `MaxFileSize`, `MaxRecursion`, `MaxFiles`,
//! `MaxEmbeddedPE`, `MaxScanTime`, `ScanArchive`, `ScanMail`, `ScanOLE2`, `ScanPDF`, `ScanHTML`,
//! `ScanOneNote`, `ScanPE`, `AlertExceedsMax`, `AlertEncrypted*`: `limits`), and two of the
//! sensor's own: `OnAccessDeadline` and `OnAccessControlSocket` (the socket `sensor status` asks; clamd's
//! `LocalSocket` stays clamd's). Unknown options and malformed values are errors `FILE:LINE: Option: what
//! is wrong`, like clamd refuses to start on them.

use super::checks::uid_of;
use super::conf_lines::option_lines;
use super::{size, FileSettings, Mode};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Size,
    /// A single word or the rest of the line (paths, regexes, commands).
    Str,
}

/// Options clamd 1.4 documents that concern clamd itself, not on-access guarding: accepted, type-checked,
/// ignored without a warning (the same file still serves clamd); the scan limits among them are applied
/// by `limits::apply_clamd`.
const CLAMD_ONLY: &[(&str, Kind)] = {
    use Kind::*;
    &[
        ("AlertBrokenExecutables", Bool),
        ("AlertBrokenMedia", Bool),
        ("AlertEncrypted", Bool),
        ("AlertEncryptedArchive", Bool),
        ("AlertEncryptedDoc", Bool),
        ("AlertExceedsMax", Bool),
        ("AlertOLE2Macros", Bool),
        ("AlertPartitionIntersection", Bool),
        ("AlertPhishingCloak", Bool),
        ("AlertPhishingSSLMismatch", Bool),
        ("AllowAllMatchScan", Bool),
        ("Bytecode", Bool),
        ("BytecodeMode", Str),
        ("BytecodeSecurity", Str),
        ("BytecodeTimeout", Number),
        ("BytecodeUnsigned", Bool),
        ("CommandReadTimeout", Number),
        ("ConcurrentDatabaseReload", Bool),
        ("CrossFilesystems", Bool),
        ("Debug", Bool),
        ("DetectPUA", Bool),
        ("DisableCertCheck", Bool),
        ("ExcludePUA", Str),
        ("ExcludePath", Str),
        ("ExitOnOOM", Bool),
        ("ExtendedDetectionInfo", Bool),
        ("FailIfCvdOlderThan", Number),
        ("FixStaleSocket", Bool),
        ("FollowDirectorySymlinks", Bool),
        ("FollowFileSymlinks", Bool),
        ("Foreground", Bool),
        ("GenerateMetadataJson", Bool),
        ("HeuristicAlerts", Bool),
        ("HeuristicScanPrecedence", Bool),
        ("IdleTimeout", Number),
        ("IncludePUA", Str),
        ("LeaveTemporaryFiles", Bool),
        ("LocalSocket", Str),
        ("LocalSocketGroup", Str),
        ("LocalSocketMode", Str),
        ("LogClean", Bool),
        ("LogFacility", Str),
        ("LogFileMaxSize", Size),
        ("LogFileUnlock", Bool),
        ("LogRotate", Bool),
        ("LogSyslog", Bool),
        ("LogTime", Bool),
        ("LogVerbose", Bool),
        ("MaxConnectionQueueLength", Number),
        ("MaxDirectoryRecursion", Number),
        ("MaxEmbeddedPE", Size),
        ("MaxFileSize", Size),
        ("MaxFiles", Number),
        ("MaxHTMLNoTags", Size),
        ("MaxHTMLNormalize", Size),
        ("MaxIconsPE", Size),
        ("MaxPartitions", Size),
        ("MaxQueue", Number),
        ("MaxRecHWP3", Number),
        ("MaxRecursion", Number),
        ("MaxScanSize", Size),
        ("MaxScanTime", Size),
        ("MaxScriptNormalize", Size),
        ("MaxThreads", Number),
        ("MaxZipTypeRcg", Size),
        ("OfficialDatabaseOnly", Bool),
        ("PCREMatchLimit", Number),
        ("PCREMaxFileSize", Size),
        ("PCRERecMatchLimit", Number),
        ("PhishingScanURLs", Bool),
        ("PhishingSignatures", Bool),
        ("PidFile", Str),
        ("ReadTimeout", Number),
        ("ScanArchive", Bool),
        ("ScanELF", Bool),
        ("ScanHTML", Bool),
        ("ScanHWP3", Bool),
        ("ScanImage", Bool),
        ("ScanImageFuzzyHash", Bool),
        ("ScanMail", Bool),
        ("ScanOLE2", Bool),
        ("ScanOneNote", Bool),
        ("ScanPDF", Bool),
        ("ScanPE", Bool),
        ("ScanPartialMessages", Bool),
        ("ScanSWF", Bool),
        ("ScanXMLDOCS", Bool),
        ("SelfCheck", Number),
        ("SendBufTimeout", Number),
        ("StreamMaxLength", Size),
        ("StreamMaxPort", Number),
        ("StreamMinPort", Number),
        ("StructuredCCOnly", Bool),
        ("StructuredDataDetection", Bool),
        ("StructuredMinCreditCardCount", Number),
        ("StructuredMinSSNCount", Number),
        ("StructuredSSNFormatNormal", Bool),
        ("StructuredSSNFormatStripped", Bool),
        ("TCPAddr", Str),
        ("TCPSocket", Number),
        ("TemporaryDirectory", Str),
        ("User", Str),
        ("VirusEvent", Str),
        // Older names clamd 1.4 still accepts (deprecated, renamed or without effect); distributions
        // still ship some of them (Debian's generated clamd.conf has most).
        ("AlgorithmicDetection", Bool),
        ("ArchiveBlockEncrypted", Bool),
        ("BlockMax", Bool),
        ("CacheSize", Number),
        ("DetectBrokenExecutables", Bool),
        ("DisableCache", Bool),
        ("ForceToDisk", Bool),
        ("OLE2BlockMacros", Bool),
        ("PartitionIntersection", Bool),
        ("PhishingAlwaysBlockCloak", Bool),
        ("PhishingAlwaysBlockSSLMismatch", Bool),
        ("PreludeAnalyzerName", Str),
        ("PreludeEnable", Bool),
        ("ScanOnAccess", Bool),
    ]
};

/// On-access options of clamonacc that have no meaning for an in-process gate: accepted, type-checked,
/// ignored with this reason as a warning.
const ONACCESS_IGNORED: &[(&str, Kind, &str)] = &[
    (
        "OnAccessRetryAttempts",
        Kind::Number,
        "the sensor scans in-process, there is no clamd connection to retry",
    ),
    (
        "OnAccessCurlTimeout",
        Kind::Number,
        "the sensor scans in-process, there is no clamd connection to time out (OnAccessDeadline bounds each answer)",
    ),
    (
        "OnAccessExtraScanning",
        Kind::Bool,
        "every open and exec is already gated by a permission event; extra scans on create/move add nothing",
    ),
    (
        "OnAccessIdleTimeout",
        Kind::Number,
        "the sensor keeps no idle clamd connections",
    ),
];

/// Options the sensor honours, with their value kind (for the type check and the error text).
const HONOURED: &[(&str, Kind)] = &[
    ("OnAccessIncludePath", Kind::Str),
    ("OnAccessExcludePath", Kind::Str),
    ("OnAccessExcludeUname", Kind::Str),
    ("OnAccessExcludeUID", Kind::Number),
    ("OnAccessExcludeRootUID", Kind::Bool),
    ("OnAccessPrevention", Kind::Bool),
    ("OnAccessDenyOnError", Kind::Bool),
    ("OnAccessMaxFileSize", Kind::Size),
    ("OnAccessMaxThreads", Kind::Number),
    ("OnAccessDisableDDD", Kind::Bool),
    ("OnAccessMountPath", Kind::Str),
    ("OnAccessDeadline", Kind::Str),
    ("OnAccessControlSocket", Kind::Str),
    ("DatabaseDirectory", Kind::Str),
    ("CVDCertsDirectory", Kind::Str),
    ("LogFile", Kind::Str),
];

fn kind_of(opt: &str) -> Option<Kind> {
    HONOURED
        .iter()
        .chain(CLAMD_ONLY)
        .map(|&(n, k)| (n, k))
        .chain(ONACCESS_IGNORED.iter().map(|&(n, k, _)| (n, k)))
        .find(|&(n, _)| n == opt)
        .map(|(_, k)| k)
}

/// clamd.conf's BOOL: yes/no, true/false, 1/0 (any case).
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(format!("expected yes/no, true/false or 1/0, got '{v}'")),
    }
}

fn parse_number(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .map_err(|_| format!("expected a whole number, got '{v}'"))
}

/// Type check of one value; returns it back for the honoured options to convert.
fn check(kind: Kind, v: &str) -> Result<(), String> {
    match kind {
        Kind::Bool => parse_bool(v).map(drop),
        Kind::Number => parse_number(v).map(drop),
        Kind::Size => size::parse(v).map(drop),
        Kind::Str => Ok(()),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Bool => "yes or no",
        Kind::Number => "a number",
        Kind::Size => "a size",
        Kind::Str => "a value",
    }
}

/// Parses clamd.conf text. `file` only names the file in messages.
pub fn parse(file: &Path, text: &str) -> Result<FileSettings, String> {
    let mut s = FileSettings {
        clamd: true,
        ..FileSettings::default()
    };
    // OnAccessExcludeUID lines, kept apart: one `0` among them disables them all (clamd.conf(5)).
    let mut uid_lines: Vec<(u32, usize)> = Vec::new();
    let lines = option_lines(file, text, "clamd", |o| kind_of(o).is_some(), kind_of_ci);
    for l in lines {
        let l = l?;
        let (n, opt, val) = (l.number, l.option, l.value);
        let at = |what: String| l.error(file, &what);
        let kind = kind_of(opt).expect("a known option");
        if val.is_empty() {
            return Err(at(format!("missing value (expected {})", kind_name(kind))));
        }
        check(kind, val).map_err(&at)?;
        let path = || (PathBuf::from(val), format!("{}:{n}: {opt}", file.display()));
        let boolean = || parse_bool(val).expect("checked");
        let number = || -> Result<u64, String> {
            val.parse::<u64>()
                .map_err(|_| at(format!("expected a whole number >= 0, got '{val}'")))
        };
        match opt {
            "OnAccessIncludePath" => s.include.push(path()),
            "OnAccessExcludePath" => s.exclude.push(path()),
            "OnAccessMountPath" => s.mount_paths.push(path()),
            "OnAccessExcludeUname" => match uid_of(val).map_err(&at)? {
                Some(uid) => s.exclude_uids.push(uid),
                None => return Err(at(format!("no such user '{val}'"))),
            },
            "OnAccessExcludeUID" => {
                let uid = u32::try_from(number()?)
                    .map_err(|_| at(format!("'{val}' is not a valid uid")))?;
                uid_lines.push((uid, n));
            }
            "OnAccessExcludeRootUID" => {
                if boolean() {
                    s.exclude_uids.push(0);
                }
            }
            "OnAccessPrevention" => {
                s.mode = Some(if boolean() {
                    Mode::Prevent
                } else {
                    Mode::NotifyOnly
                })
            }
            "OnAccessDenyOnError" => s.deny_on_error = Some(boolean()),
            "OnAccessMaxFileSize" => s.max_file_size = Some(size::parse(val).expect("checked")),
            "OnAccessMaxThreads" => {
                let t = usize::try_from(number()?).unwrap_or(usize::MAX);
                super::checks::check_threads(t).map_err(&at)?;
                s.threads = Some(t);
            }
            "OnAccessDisableDDD" => s.recursive = Some(!boolean()),
            "OnAccessDeadline" => {
                let secs = val
                    .parse::<f64>()
                    .map_err(|_| at(format!("expected a number of seconds, got '{val}'")))?;
                super::checks::check_deadline(secs).map_err(&at)?;
                s.deadline = Some(secs);
            }
            "OnAccessControlSocket" => s.socket = Some(PathBuf::from(val)),
            "DatabaseDirectory" => s.databases = vec![PathBuf::from(val)],
            "CVDCertsDirectory" => s.certs_dir = Some(PathBuf::from(val)),
            "LogFile" => s.log = Some(PathBuf::from(val)),
            _ if super::protocol::apply_clamd(&mut s.protocol, opt, val).map_err(&at)? => {
                // MaxThreads and friends concern the protocol server only; the scan limits that it
                // shares with the gate are applied below as well.
                super::limits::apply_clamd(&mut s.limits, opt, val);
            }
            _ if super::limits::apply_clamd(&mut s.limits, opt, val) => {}
            _ => {
                if let Some((_, _, why)) = ONACCESS_IGNORED.iter().find(|(o, _, _)| *o == opt) {
                    s.warnings
                        .push(format!("{}:{n}: {opt} ignored: {why}", file.display()));
                }
            }
        }
    }
    if let Some(&(_, n)) = uid_lines.iter().find(|(uid, _)| *uid == 0) {
        s.warnings.push(format!(
            "{}:{n}: OnAccessExcludeUID 0 disables every OnAccessExcludeUID line, as clamd.conf(5) \
             documents: no uid is excluded by them (use OnAccessExcludeRootUID yes to exclude root)",
            file.display()
        ));
    } else {
        s.exclude_uids.extend(uid_lines.iter().map(|&(uid, _)| uid));
    }
    Ok(s)
}

/// The known option `opt` most likely means: same letters in another case, or at most two edits away.
fn kind_of_ci(opt: &str) -> Option<&'static str> {
    let names = || {
        HONOURED
            .iter()
            .chain(CLAMD_ONLY)
            .map(|&(n, _)| n)
            .chain(ONACCESS_IGNORED.iter().map(|&(n, _, _)| n))
    };
    names().find(|n| n.eq_ignore_ascii_case(opt)).or_else(|| {
        names()
            .map(|n| (edits(&n.to_ascii_lowercase(), &opt.to_ascii_lowercase()), n))
            .filter(|&(d, _)| d <= 2)
            .min_by_key(|&(d, _)| d)
            .map(|(_, n)| n)
    })
}

/// Levenshtein distance (option names are short ASCII).
fn edits(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<FileSettings, String> {
        parse(Path::new("/etc/clamd.conf"), text)
    }

    #[test]
    fn every_honoured_option() {
        let s = p("# comment\n\
                   \n\
                   OnAccessIncludePath /home\n\
                   OnAccessIncludePath /srv/data dir\n\
                   OnAccessExcludePath /home/cache\n\
                   OnAccessMountPath /mnt\n\
                   OnAccessMountPath /media\n\
                   OnAccessExcludeUname root\n\
                   OnAccessExcludeUID 998\n\
                   OnAccessExcludeUID 999\n\
                   OnAccessExcludeRootUID yes\n\
                   OnAccessPrevention yes\n\
                   OnAccessDenyOnError true\n\
                   OnAccessMaxFileSize 10M\n\
                   OnAccessMaxThreads 3\n\
                   OnAccessDisableDDD 1\n\
                   OnAccessDeadline 2.5\n\
                   DatabaseDirectory /var/lib/clamav\n\
                   CVDCertsDirectory /etc/clamav/certs\n\
                   LogFile /var/log/clamav/clamav.log\n")
        .unwrap();
        assert!(s.clamd);
        let paths =
            |v: &Vec<(PathBuf, String)>| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(&s.include),
            [PathBuf::from("/home"), PathBuf::from("/srv/data dir")]
        );
        assert_eq!(s.include[0].1, "/etc/clamd.conf:3: OnAccessIncludePath");
        assert_eq!(paths(&s.exclude), [PathBuf::from("/home/cache")]);
        assert_eq!(
            paths(&s.mount_paths),
            [PathBuf::from("/mnt"), PathBuf::from("/media")]
        );
        assert_eq!(s.exclude_uids, [0, 0, 998, 999]);
        assert_eq!(s.mode, Some(Mode::Prevent));
        assert_eq!(s.deny_on_error, Some(true));
        assert_eq!(s.max_file_size, Some(10 << 20));
        assert_eq!(s.threads, Some(3));
        assert_eq!(s.recursive, Some(false));
        assert_eq!(s.deadline, Some(2.5));
        assert_eq!(s.databases, [PathBuf::from("/var/lib/clamav")]);
        assert_eq!(s.certs_dir, Some(PathBuf::from("/etc/clamav/certs")));
        assert_eq!(s.log, Some(PathBuf::from("/var/log/clamav/clamav.log")));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn negatives_and_defaults() {
        let s = p(
            "OnAccessPrevention no\nOnAccessExcludeRootUID no\nOnAccessDisableDDD no\n\
                   OnAccessDenyOnError 0\n",
        )
        .unwrap();
        assert_eq!(s.mode, Some(Mode::NotifyOnly));
        assert!(s.exclude_uids.is_empty());
        assert_eq!(s.recursive, Some(true));
        assert_eq!(s.deny_on_error, Some(false));
        let s = p("").unwrap();
        assert_eq!((s.mode, s.threads, s.max_file_size), (None, None, None));
    }

    #[test]
    fn clamd_options_are_accepted_silently_onaccess_leftovers_with_a_warning() {
        let s = p(
            "LocalSocket /run/clamd.ctl\nUser clamav\nMaxThreads 12\nScanPE yes\n\
                   MaxScanSize 100M\nVirusEvent /usr/bin/notify %v now\nFailIfCvdOlderThan -1\n\
                   ArchiveBlockEncrypted false\nPreludeAnalyzerName ClamAV\n",
        )
        .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = p(
            "OnAccessRetryAttempts 3\nOnAccessCurlTimeout 5000\nOnAccessExtraScanning yes\n\
                   OnAccessIdleTimeout 60\n",
        )
        .unwrap();
        assert_eq!(s.warnings.len(), 4);
        assert!(s.warnings[0].starts_with("/etc/clamd.conf:1: OnAccessRetryAttempts ignored: "));
        assert!(s.warnings[3].starts_with("/etc/clamd.conf:4: OnAccessIdleTimeout ignored: "));
    }

    #[test]
    fn uid_zero_disables_the_uid_lines() {
        let s = p("OnAccessExcludeUID 1000\nOnAccessExcludeUID 0\nOnAccessExcludeRootUID yes\n")
            .unwrap();
        assert_eq!(s.exclude_uids, [0], "only ExcludeRootUID remains");
        assert!(s.warnings[0].starts_with("/etc/clamd.conf:2: OnAccessExcludeUID 0 disables"));
    }

    #[test]
    fn errors_name_file_line_and_option() {
        let cases = [
            ("LocalSocket /x\nBogusOption yes\n", "/etc/clamd.conf:2: BogusOption: unknown option"),
            ("onaccessprevention yes", "/etc/clamd.conf:1: onaccessprevention: unknown option (did you mean OnAccessPrevention? option names are case sensitive)"),
            ("OnAcessIncludePath /x", "/etc/clamd.conf:1: OnAcessIncludePath: unknown option (did you mean OnAccessIncludePath?"),
            ("Frobnicate yes", "/etc/clamd.conf:1: Frobnicate: unknown option"),
            ("\n\nOnAccessPrevention maybe", "/etc/clamd.conf:3: OnAccessPrevention: expected yes/no"),
            ("OnAccessMaxThreads many", "/etc/clamd.conf:1: OnAccessMaxThreads: expected a whole number"),
            ("OnAccessMaxThreads 0", "/etc/clamd.conf:1: OnAccessMaxThreads: must be at least 1"),
            ("OnAccessMaxThreads 100000", "/etc/clamd.conf:1: OnAccessMaxThreads: must be at most 1024, got 100000"),
            ("OnAccessMaxThreads -2", "/etc/clamd.conf:1: OnAccessMaxThreads: expected a whole number >= 0"),
            ("OnAccessMaxFileSize 5X", "/etc/clamd.conf:1: OnAccessMaxFileSize: expected a size"),
            ("OnAccessIncludePath", "/etc/clamd.conf:1: OnAccessIncludePath: missing value"),
            ("ScanPE   ", "/etc/clamd.conf:1: ScanPE: missing value (expected yes or no)"),
            ("MaxThreads lots", "/etc/clamd.conf:1: MaxThreads: expected a whole number"),
            ("OnAccessExcludeUID 99999999999", "/etc/clamd.conf:1: OnAccessExcludeUID: '99999999999' is not a valid uid"),
            ("OnAccessExcludeUname no-such-user-sensor-test", "/etc/clamd.conf:1: OnAccessExcludeUname: no such user 'no-such-user-sensor-test'"),
            ("OnAccessDeadline 0", "/etc/clamd.conf:1: OnAccessDeadline: must be more than 0"),
            ("OnAccessDeadline 601", "/etc/clamd.conf:1: OnAccessDeadline: must be more than 0"),
            ("OnAccessDeadline soon", "/etc/clamd.conf:1: OnAccessDeadline: expected a number of seconds"),
            ("#\nExample\nLogFile /x", "/etc/clamd.conf:2: Example: this is ClamAV's unedited sample"),
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
    fn the_sample_file_is_refused_while_it_has_its_example_line() {
        let path = Path::new("/usr/share/doc/clamav-daemon/examples/clamd.conf.sample");
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let e = parse(path, &text).expect_err("the sample must be refused");
                assert!(e.contains(": Example: "), "{e}");
                // Every option it mentions, commented out or not, is one this parser knows.
                for l in text.lines() {
                    let l = l.strip_prefix('#').unwrap_or(l);
                    let mut words = l.split_whitespace();
                    let (Some(opt), Some(_)) = (words.next(), words.next()) else {
                        continue;
                    };
                    if l.starts_with(|c: char| c.is_ascii_uppercase())
                        && opt.chars().all(|c| c.is_ascii_alphanumeric())
                        && opt != "Example"
                    {
                        assert!(kind_of(opt).is_some(), "sample option {opt} unknown");
                    }
                }
            }
            Err(e) => crate::test_support::skip_or_fail(
                "the_sample_file_is_refused_while_it_has_its_example_line",
                &format!("{}: {e} (package clamav-daemon)", path.display()),
            ),
        }
    }
}
