//! `sensor audit ...`: the subcommands that read the audit log. Each prints its result and returns the
//! exit code; `main` only dispatches here.

use super::verify::{self, VerifyError};
use crate::cli::{AuditArgs, AuditCommand};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::Verify { audit_dir } => verify_cmd(&audit_dir),
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
