//! Exec-guard kills reported by the kernel (`KILLS` ring buffer): the kill itself happens in the kernel
//! (`sched_process_exec`); this only tells userspace so it can record it (issue 5's audit log).

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
