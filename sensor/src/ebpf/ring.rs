//! Reading a kernel ring buffer of fixed-size plain-data records until told to stop.

use crate::service::{Stop, Woken};
use aya::maps::{MapData, RingBuf};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The longest wait for records: `after_wait`'s period when none come.
const PERIOD: Duration = Duration::from_millis(200);

/// Until `stop` is signalled (it wakes the wait at once): every record, read as a `T`, to `on_record`;
/// `after_wait` runs after each wait (periodic work). Shorter records are skipped.
///
/// `T` must be plain data (`aya::Pod`) that the kernel program writes whole.
pub fn drain<T: aya::Pod>(
    ring: &mut RingBuf<MapData>,
    stop: &Stop,
    mut on_record: impl FnMut(T),
    mut after_wait: impl FnMut(),
) {
    while stop.wait_for(ring.as_raw_fd(), libc::POLLIN, PERIOD) != Woken::Stop {
        while let Some(item) = ring.next() {
            if item.len() >= std::mem::size_of::<T>() {
                // SAFETY: at least size_of::<T>() bytes, written by the kernel program as a T (plain data,
                // any bit pattern valid).
                let rec = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<T>()) };
                drop(item);
                on_record(rec);
            }
        }
        after_wait();
    }
}
