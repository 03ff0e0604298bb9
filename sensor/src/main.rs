//! The `sensor` binary: command line -> subcommand. Owns only the dispatch; never parses options
//! itself (that is `cli`) nor does any scanning work (that is each subcommand's module).

mod cli;
mod scan;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Scan(args) => scan::run(args),
    }
}
