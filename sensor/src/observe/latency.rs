//! Decision latency: how long each permission event waited between the reader's read(2) and its answer.
//!
//! Recorded on the paths that answer the kernel (reader, workers, watchdog, a permit's Drop), so recording
//! is lock-free and allocation-free: a binary search over a fixed table, then two relaxed `fetch_add`s.
//! Buckets are fixed and log-scale (1-2-5 per decade, 1 µs .. 10 s, plus +Inf), the same `le` bounds the
//! Prometheus endpoint exports, so a dashboard and `sensor status` read one histogram. The count is not
//! kept apart: it is the sum of the buckets, so a snapshot's `+Inf` bucket always equals its count even
//! while other threads record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds (inclusive, nanoseconds) of the finite buckets; one more bucket above takes the rest.
pub const BOUNDS_NS: [u64; 22] = {
    let mut b = [0u64; 22];
    let steps = [1u64, 2, 5];
    let mut i = 0;
    let mut decade = 1_000u64; // 1 µs
    while i < 21 {
        b[i] = steps[i % 3] * decade;
        if i % 3 == 2 {
            decade *= 10;
        }
        i += 1;
    }
    // Twice the default deadline; answers slower than this (deadlines go up to 600 s) land in +Inf.
    b[21] = 10_000_000_000;
    b
};

/// Buckets including the +Inf one.
pub const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// How an event was answered; each route has its own histogram, the overall one is their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// After reading and scanning the file.
    Scanned,
    /// Without a scan: verdict cache, outside or excluded, too large, not a regular file, own process.
    Fast,
    /// With the fail policy: deadline, full queue, unreadable file, internal failure.
    FailPolicy,
}

impl Route {
    pub const ALL: [Route; 3] = [Route::Scanned, Route::Fast, Route::FailPolicy];

    /// The label value (JSON key, Prometheus `route` label).
    pub fn name(self) -> &'static str {
        match self {
            Route::Scanned => "scanned",
            Route::Fast => "fast",
            Route::FailPolicy => "fail_policy",
        }
    }
}

#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

fn bucket_of(ns: u64) -> usize {
    BOUNDS_NS.partition_point(|&b| b < ns)
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // In range by construction: partition_point returns at most BOUNDS_NS.len().
        if let Some(b) = self.buckets.get(bucket_of(ns)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

/// The gate's histograms, one per [`Route`].
#[derive(Debug, Default)]
pub struct Latency {
    scanned: Histogram,
    fast: Histogram,
    fail_policy: Histogram,
}

impl Latency {
    fn of(&self, route: Route) -> &Histogram {
        match route {
            Route::Scanned => &self.scanned,
            Route::Fast => &self.fast,
            Route::FailPolicy => &self.fail_policy,
        }
    }

    /// Records an answer given now to an event read at `since`.
    pub fn record(&self, route: Route, since: Instant) {
        self.of(route).record(since.elapsed());
    }

    pub fn snapshot(&self, route: Route) -> Snapshot {
        self.of(route).snapshot()
    }

    /// Every route together.
    pub fn overall(&self) -> Snapshot {
        Route::ALL
            .iter()
            .map(|r| self.snapshot(*r))
            .fold(Snapshot::default(), |a, b| a.merge(&b))
    }
}

/// A histogram's values at one moment (per bucket, not cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            buckets: [0; BUCKETS],
            sum_ns: 0,
        }
    }
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    pub fn merge(mut self, other: &Snapshot) -> Snapshot {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
        self
    }

    /// The `q` quantile (0..=1), estimated as Prometheus' `histogram_quantile` does, so the status and a
    /// dashboard agree: linear interpolation inside the bucket that holds the rank (the first bucket starts
    /// at 0); a rank in the +Inf bucket gives the highest finite bound. `None` without any sample.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = BOUNDS_NS.get(i) else {
                    return Some(Duration::from_nanos(BOUNDS_NS[BOUNDS_NS.len() - 1]));
                };
                let lower = if i == 0 { 0 } else { BOUNDS_NS[i - 1] };
                let frac = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                let ns = lower as f64 + (upper - lower) as f64 * frac;
                return Some(Duration::from_nanos(ns.round() as u64));
            }
            below += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_1_2_5_per_decade_from_1us_to_10s() {
        assert_eq!(BOUNDS_NS[0], 1_000);
        assert_eq!(&BOUNDS_NS[..4], &[1_000, 2_000, 5_000, 10_000]);
        assert_eq!(BOUNDS_NS[20], 5_000_000_000);
        assert_eq!(BOUNDS_NS[21], 10_000_000_000);
        assert!(BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_value_goes_to_the_first_bucket_whose_bound_is_not_below_it() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1_000), 0, "bounds are inclusive, as `le`");
        assert_eq!(bucket_of(1_001), 1);
        assert_eq!(bucket_of(10_000_000_000), 21);
        assert_eq!(bucket_of(10_000_000_001), 22, "+Inf");
        assert_eq!(bucket_of(u64::MAX), 22);
    }

    #[test]
    fn records_count_sum_and_buckets() {
        let h = Histogram::default();
        h.record(Duration::from_micros(3));
        h.record(Duration::from_micros(3));
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.count(), 3);
        assert_eq!(s.buckets[2], 2, "3 µs is in (2 µs, 5 µs]");
        assert_eq!(s.buckets[BUCKETS - 1], 1);
        assert_eq!(s.sum_ns, 6_000 + 3_600_000_000_000);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_histogram_quantile() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile(0.5), None);
        for _ in 0..100 {
            h.record(Duration::from_micros(15)); // (10 µs, 20 µs]
        }
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(15)));
        assert_eq!(s.quantile(1.0), Some(Duration::from_micros(20)));
        // 99 fast, 1 slow: p50 among the fast ones, p99 still in their bucket, p100 in the slow one's.
        let h = Histogram::default();
        for _ in 0..99 {
            h.record(Duration::from_nanos(500));
        }
        h.record(Duration::from_millis(150)); // (100 ms, 200 ms]
        let s = h.snapshot();
        assert!(s.quantile(0.5).unwrap() <= Duration::from_micros(1));
        assert_eq!(s.quantile(0.99), Some(Duration::from_micros(1)));
        assert_eq!(s.quantile(1.0), Some(Duration::from_millis(200)));
    }

    #[test]
    fn a_rank_in_the_infinite_bucket_gives_the_highest_finite_bound() {
        let h = Histogram::default();
        h.record(Duration::from_secs(60));
        assert_eq!(h.snapshot().quantile(0.99), Some(Duration::from_secs(10)));
    }

    #[test]
    fn overall_is_the_sum_of_the_routes() {
        let l = Latency::default();
        let t = Instant::now();
        l.record(Route::Scanned, t);
        l.record(Route::Fast, t);
        l.record(Route::Fast, t);
        l.record(Route::FailPolicy, t);
        assert_eq!(l.snapshot(Route::Fast).count(), 2);
        let all = l.overall();
        assert_eq!(all.count(), 4);
        let parts = Route::ALL.map(|r| l.snapshot(r).sum_ns);
        assert_eq!(all.sum_ns, parts.iter().sum::<u64>());
    }
}
