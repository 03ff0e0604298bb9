//! `sensor db`: signature database tools. `compile` builds ClamAV databases once and writes the result as
//! one compiled file, which `scan -d` and `run -d` then map instead of compiling the text at every load;
//! `info` shows what a database gives, file by file, and what it leaves out and why; `update` is freshclam's
//! job (`update`), and `mirror` keeps a
//! private mirror for a fleet (`update::mirror`).
//!
//! Owns: the subcommand's output and exit codes (0 written, 2 not). Never: the file format (the engine's).

use crate::cli::{CompileArgs, DbArgs, DbCommand, InfoArgs};
use std::process::ExitCode;
use std::time::Instant;

pub fn run(args: DbArgs) -> ExitCode {
    match args.command {
        DbCommand::Compile(a) => ExitCode::from(compile(&a)),
        DbCommand::Info(a) => ExitCode::from(info(&a)),
        DbCommand::Update(a) => ExitCode::from(crate::update::run(&a)),
        DbCommand::Mirror(a) => ExitCode::from(crate::update::mirror::run(&a)),
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
    let certs = crate::clamsign::certs_dir(a.cvdcertsdir.as_ref());
    let (keys, notes) = crate::clamsign::keys_for_load(&a.sources, certs.as_deref());
    for n in notes {
        eprintln!("sensor db compile: warning: {n}");
    }
    c.set_keys(keys);
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

/// Prints one row per file (type, signatures loaded, lines skipped), a row per skip reason under it, and
/// the totals by type. Exit 0, or 2 when the database does not load (its errors are printed, by file
/// and line, as every load prints them).
fn info(a: &InfoArgs) -> u8 {
    let db = match engine::load(&a.sources, &crate::threads::Threads) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    print!("{}", info_text(&db));
    0
}

fn info_text(db: &engine::Database) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let stats = db.file_stats();
    let width = stats.iter().map(|s| s.file.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<16} {:>9} {:>9}  REASON",
        "FILE", "TYPE", "LOADED", "SKIPPED"
    );
    let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for s in stats {
        let skipped: u64 = s.skipped.values().sum();
        let t = by_kind.entry(&s.kind).or_default();
        t.0 += s.loaded;
        t.1 += skipped;
        let _ = writeln!(
            out,
            "{:<width$}  {:<16} {:>9} {:>9}",
            s.file, s.kind, s.loaded, skipped
        );
        for (reason, n) in &s.skipped {
            *reasons.entry(reason).or_default() += n;
            let _ = writeln!(
                out,
                "{:<width$}  {:<16} {:>9} {:>9}  {reason}",
                "", "", "", n
            );
        }
    }
    let _ = writeln!(out, "\nBY TYPE{:<9}  {:>9} {:>9}", "", "LOADED", "SKIPPED");
    for (kind, (loaded, skipped)) in &by_kind {
        let _ = writeln!(out, "{kind:<16}  {loaded:>9} {skipped:>9}");
    }
    let _ = writeln!(out, "\nSKIPPED BY REASON");
    if reasons.is_empty() {
        let _ = writeln!(out, "(nothing skipped)");
    }
    for (reason, n) in &reasons {
        let _ = writeln!(out, "{n:>9}  {reason}");
    }
    let _ = writeln!(
        out,
        "\n{} signatures loaded (clamscan's \"Known viruses\"), {} lines skipped; {}",
        db.signature_count(),
        reasons.values().sum::<u64>(),
        if db.is_mapped() {
            "a compiled database"
        } else {
            "built from ClamAV files"
        }
    );
    for n in db.notices() {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
