//! A one-line progress indicator on stderr, only when stderr is a terminal.
//!
//! Owns: the terminal check, throttling, erasing its line before other output. Never: writes
//! anything when stderr is a pipe or file (scripts see exactly clamscan's streams).

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    shown: bool,
    last: Option<Instant>,
}

impl Progress {
    /// Enabled when asked for and stderr is a TTY.
    pub fn new(wanted: bool) -> Progress {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
        Progress {
            enabled: wanted && tty,
            shown: false,
            last: None,
        }
    }

    pub fn tick(&mut self, files: u64, infected: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[KScanning... {files} files, {infected} infected");
        let _ = e.flush();
        self.shown = true;
    }

    /// Erases the progress line so the next line starts clean.
    pub fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            self.shown = false;
        }
    }
}
