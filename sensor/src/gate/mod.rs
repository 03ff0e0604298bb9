//! The on-access gate: a fanotify permission loop that answers every open/exec of a file under the protected
//! trees with allow or deny, within a deadline, whatever fails.
//!
//! Data flows one way: kernel event (`reader`) -> filter -> cache -> scan (`workers`) -> verdict -> answer
//! (`permit`) -> report. The thread that reads events never logs, never blocks, never allocates unboundedly.

use crate::config::RunConfig;
use std::process::ExitCode;

/// Runs until SIGTERM/SIGINT. Stub until the gate lands.
pub fn run(cfg: RunConfig) -> ExitCode {
    eprintln!(
        "sensor run: the on-access gate is not built yet ({:?} mode)",
        cfg.mode
    );
    ExitCode::from(2)
}
