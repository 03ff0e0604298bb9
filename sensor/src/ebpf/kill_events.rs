//! Reads the exec guard's kill events from the kernel (`KILLS` ring buffer): the kill itself happens in
//! the kernel (`sched_process_exec`); this only hands each event to userspace, where `kill_reports`
//! says so on stdout, in the log and in the audit trail.

use aya::maps::{MapData, RingBuf};
use sensor_common::KillEvent;

pub struct Kills {
    events: RingBuf<MapData>,
}

impl Kills {
    pub fn new(events: RingBuf<MapData>) -> Kills {
        Kills { events }
    }

    /// Calls `on_kill` for every kill until `stop` is set.
    pub fn run(mut self, stop: &crate::service::Stop, on_kill: impl FnMut(KillEvent)) {
        super::ring::drain(&mut self.events, stop, on_kill, || {});
    }
}
