//! The `sensor` binary: diagnostics on stderr (`diagnostics`), then command line -> subcommand. Owns only
//! the dispatch; never parses options itself (that is `cli`) nor does any scanning work (that is each
//! subcommand's module).

mod audit;
mod clamd;
mod clamsign;
mod cli;
mod config;
mod control;
mod daemon;
mod db;
mod diagnostics;
mod ebpf;
mod gate;
mod hooks;
mod observe;
mod safefile;
mod scan;
mod service;
#[cfg(test)]
mod test_support;
mod threads;
mod update;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything can warn (the audit thread, a sink): without a subscriber tracing's events go nowhere.
    diagnostics::install();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Scan(args) => scan::run(args),
        cli::Command::Audit(args) => audit::cmd::run(args),
        cli::Command::Status(args) => control::run(args),
        cli::Command::Db(args) => db::run(args),
        cli::Command::Run(args) => run(args),
    }
}

/// `sensor run`: configuration (pure data) -> `Sensor::build` (acquires fanotify, BPF, sockets) -> `run`
/// until SIGTERM or SIGINT -> `drain`.
fn run(args: cli::RunArgs) -> ExitCode {
    let cfg = match config::load(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("sensor run: {e}");
            // EX_USAGE: bad configuration, as sysexits.h has it.
            return ExitCode::from(64);
        }
    };
    for w in &cfg.warnings {
        eprintln!("sensor run: warning: {w}");
    }
    // Before any thread starts: every thread inherits the mask.
    let signals = daemon::Signals::block();
    let mut sensor = match daemon::Sensor::build(args, cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sensor run: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    sensor.run(&signals);
    sensor.drain();
    ExitCode::SUCCESS
}
