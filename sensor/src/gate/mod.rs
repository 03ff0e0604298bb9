//! The decision path: kernel event (`reader`) -> filter -> cache -> scan (`worker`) -> verdict -> answer
//! (`permit`), within a deadline (`watchdog`), whatever fails.
//!
//! The thread that reads events never logs, never blocks, never allocates unboundedly, and never waits on a
//! lock a worker can hold; the `watchdog` answers what a worker does not answer in time. Coverage is race-free
//! because the marks are on whole filesystems (a file in a directory created a microsecond ago raises events
//! like any other), and cheap because clean files get kernel ignore marks, kept only under a read lease that
//! no writer broke (`cache`). Never: starts threads of its own or reports to people (that is `daemon`).

pub mod cache;
pub mod filter;
pub mod permit;
pub mod reader;
pub mod sys;
pub mod watchdog;
pub mod worker;
