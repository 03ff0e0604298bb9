//! `sensor audit ...`: the subcommands that read the audit log. Each prints its result and returns the
//! exit code; `main` only dispatches here.

use super::verify::{self, VerifyError};
use crate::cli::{AuditArgs, AuditCommand};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::Verify { audit_dir } => verify_cmd(&audit_dir),
        AuditCommand::Export {
            audit_dir,
            since,
            until,
            verdict,
            format,
        } => export_cmd(
            &audit_dir,
            since.as_deref(),
            until.as_deref(),
            verdict.as_deref(),
            &format,
        ),
    }
}

/// Exit 0: exported; 1: some lines could not be read (named on stderr, skipped; the rest exported);
/// 2: bad arguments, an unreadable directory, or stdout failed.
fn export_cmd(
    dir: &Path,
    since: Option<&str>,
    until: Option<&str>,
    verdict: Option<&str>,
    format: &str,
) -> ExitCode {
    use super::export::{export, Filter, Format};
    let format: Format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sensor audit export: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match Filter::from_args(since, until, verdict) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sensor audit export: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = super::read::files(dir) {
        eprintln!("sensor audit export: {e}");
        return ExitCode::from(2);
    }
    let mut bad = 0u64;
    let records = super::read::records(dir).filter_map(|r| match r {
        Ok((_, _, record)) => Some(record),
        Err(e) => {
            bad += 1;
            eprintln!("sensor audit export: skipped: {e}");
            None
        }
    });
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    match export(records, &filter, format, out) {
        Ok(n) => {
            eprintln!("sensor audit export: {n} records");
            if bad > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("sensor audit export: writing: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit 0: intact; 1: the chain is broken (the first problem printed as `FILE:LINE: what`); 2: the
/// log could not be read.
fn verify_cmd(dir: &Path) -> ExitCode {
    match verify::verify(dir) {
        Ok(s) => {
            println!("{}: intact", dir.display());
            println!("files: {}", s.files);
            match (s.first_seq, s.last_seq) {
                (Some(a), Some(b)) => println!("records: {} (seq {a}..={b})", s.records),
                _ => println!("records: 0"),
            }
            if let (Some(a), Some(b)) = (&s.first_time, &s.last_time) {
                println!("time: {a} .. {b}");
            }
            if let Some(h) = &s.last_hash {
                println!("last hash: {h}");
            }
            if let (Some((file, line)), Some(first)) = (&s.vouched_by, s.first_seq) {
                println!(
                    "records before seq {first} removed by retention, vouched for by {}:{line}",
                    file.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(VerifyError::Broken(p)) => {
            println!("{p}");
            eprintln!("sensor audit verify: {}: NOT intact", dir.display());
            ExitCode::from(1)
        }
        Err(VerifyError::Unreadable(e)) => {
            eprintln!("sensor audit verify: {e}");
            ExitCode::from(2)
        }
    }
}
