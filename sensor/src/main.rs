//! The `sensor` binary: command line -> subcommand. Owns only the dispatch; never parses options
//! itself (that is `cli`) nor does any scanning work (that is each subcommand's module).

mod audit;
mod cli;
mod config;
mod control;
mod daemon;
mod db;
mod ebpf;
mod gate;
mod observe;
mod safefile;
mod scan;
mod service;
#[cfg(test)]
mod test_support;
mod threads;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Scan(args) => scan::run(args),
        cli::Command::Audit(args) => audit::cmd::run(args),
        cli::Command::Status(args) => control::run(args),
        cli::Command::Db(args) => db::run(args),
        cli::Command::Run(args) => match config::load(&args) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("sensor run: warning: {w}");
                }
                daemon::run(args, cfg)
            }
            Err(e) => {
                eprintln!("sensor run: {e}");
                // EX_USAGE: bad configuration, as sysexits.h has it.
                ExitCode::from(64)
            }
        },
    }
}
