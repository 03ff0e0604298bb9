//! `sensor run`: the daemon around the decision path. [`Sensor::build`] acquires what the configuration asks
//! for and starts the threads, [`Sensor::run`] is the main thread (signals, status file, warnings) and
//! [`Sensor::drain`] stops everything, answering what is pending (`sensor`).
//!
//! The rest are its parts: what is watched (`roots`), loading and reloading (`reload`), the audit trail's
//! start and stop (`trail`), what the main thread warns about (`warnings`), the signals it waits for
//! (`signals`), and the side services: the reporter (`report`: detection lines, log, quarantine), the mount
//! watcher (`mounts`), directory moves (`moves`) and systemd notifications (`notify`). The decision path
//! itself is `crate::gate`; what the sensor shows of itself is `crate::observe`.

pub mod mounts;
pub mod moves;
pub mod notify;
pub mod report;

mod reload;
mod roots;
mod sensor;
mod side;
mod signals;
mod trail;
mod warnings;

pub use sensor::Sensor;
pub use signals::Signals;
