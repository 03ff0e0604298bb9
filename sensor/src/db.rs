//! `sensor db`: signature database tools. `compile` builds ClamAV databases once and writes the result as
//! one compiled file, which `scan -d` and `run -d` then map instead of compiling the text at every load.
//!
//! Owns: the subcommand's output and exit codes (0 written, 2 not). Never: the file format (the engine's).

use crate::cli::{CompileArgs, DbArgs, DbCommand};
use std::process::ExitCode;
use std::time::Instant;

pub fn run(args: DbArgs) -> ExitCode {
    match args.command {
        DbCommand::Compile(a) => ExitCode::from(compile(&a)),
    }
}

fn compile(a: &CompileArgs) -> u8 {
    if let Some(p) = a.sources.iter().find(|p| engine::is_compiled(p)) {
        eprintln!(
            "sensor db compile: {}: already a compiled database; give the ClamAV files it was built from",
            p.display()
        );
        return 2;
    }
    let start = Instant::now();
    let mut c = engine::Compiler::new();
    for p in &a.sources {
        if let Err(e) = c.add_path(p) {
            eprintln!("{e}");
            return 2;
        }
    }
    let db = match c.build_with(&crate::threads::Threads) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("sensor db compile: nothing written");
            return 2;
        }
    };
    let built = start.elapsed();
    let skipped: u64 = db.skipped().values().sum();
    for (reason, n) in db.skipped() {
        eprintln!("{n} signatures skipped: {reason}");
    }
    let size = match db.save(&a.output) {
        Ok(size) => size,
        Err(e) => {
            eprintln!(
                "sensor db compile: cannot write {}: {e}",
                a.output.display()
            );
            return 2;
        }
    };
    println!(
        "{}: {} signatures ({skipped} skipped), {}, built in {:.2} s, written in {:.2} s",
        a.output.display(),
        db.signature_count(),
        human(size),
        built.as_secs_f64(),
        (start.elapsed() - built).as_secs_f64()
    );
    0
}

fn human(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}
