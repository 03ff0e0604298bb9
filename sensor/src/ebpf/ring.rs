//! Reading a kernel ring buffer of fixed-size plain-data records until told to stop.

use aya::maps::{MapData, RingBuf};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// How long one wait for records lasts, so a stop request is seen within it.
const POLL_MS: i32 = 200;

/// Until `stop` (checked at least every [`POLL_MS`]): every record, read as a `T`, to `on_record`;
/// `after_wait` runs after each wait (periodic work). Shorter records are skipped.
///
/// `T` must be plain data (`aya::Pod`) that the kernel program writes whole.
pub fn drain<T: aya::Pod>(
    ring: &mut RingBuf<MapData>,
    stop: &AtomicBool,
    mut on_record: impl FnMut(T),
    mut after_wait: impl FnMut(),
) {
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
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
