//! What the running sensor shows of itself: counters and the status snapshot (`status`), decision latency
//! (`latency`), the status file, the control socket's server (`control_server`) and the Prometheus metrics
//! endpoint (`metrics`; its text is `exposition`'s), both served by `serve`, and what the loaded database
//! is (`dbinfo`).
//!
//! Never: answers the kernel or takes a lock a decision waits for; counters are relaxed atomics.

pub mod control_server;
pub mod dbinfo;
pub mod exposition;
pub mod latency;
pub mod metrics;
pub mod serve;
pub mod status;
