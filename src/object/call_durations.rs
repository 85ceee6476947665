//! The per-method call duration histogram, aggregated in place: a fixed
//! set of bucket counters per method label ([`DurationHistogram`]),
//! rendered in the Prometheus text format by
//! [`write_prometheus`](super::call_metrics::write_prometheus).
//!
//! Why not `metrics::histogram!`: the Prometheus exporter keeps every
//! recorded sample (24 bytes) until its next upkeep, so memory would grow
//! with the call rate (about 48 MB at 400 000 calls/s and a 5 s upkeep),
//! and a fast peer would drive it. Here a call costs two relaxed atomic
//! additions and memory is fixed per label.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets (seconds): from sub-millisecond local
/// answers to calls that wait a minute (the demo's `sleep` cap); above the
/// last, only `+Inf`.
pub const METHOD_CALL_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The bounds in whole microseconds, for the per-call comparison.
const BOUNDS_US: [u64; 16] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Bucket counts (not cumulative; the last is `+Inf`) and the sum.
#[derive(Debug)]
pub(crate) struct DurationHistogram {
    buckets: [AtomicU64; 17],
    sum_us: AtomicU64,
}

impl DurationHistogram {
    pub(crate) const fn new() -> Self {
        DurationHistogram {
            buckets: [const { AtomicU64::new(0) }; 17],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Count one call that took `d`.
    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(16);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Append this histogram's series for `method` (nothing if empty).
    pub(crate) fn write(&self, name: &str, method: &str, out: &mut String) {
        let counts = self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed));
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return;
        }
        let method = escape(method);
        let mut cumulative = 0;
        for (i, n) in counts.iter().enumerate() {
            cumulative += n;
            let le = match METHOD_CALL_BUCKETS.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{method=\"{method}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{method=\"{method}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{method=\"{method}\"}} {cumulative}");
    }
}

/// A label value in the Prometheus text format: `\`, `"` and newlines
/// escaped (declared method names may hold anything).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_escaped() {
        let h = DurationHistogram::new();
        h.record(Duration::from_micros(500));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(120));
        let mut out = String::new();
        h.write("x", "a\"b", &mut out);
        assert!(
            out.contains("x_bucket{method=\"a\\\"b\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("le=\"60\"} 2\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{method=\"a\\\"b\"} 120.0035\n"), "{out}");
        assert!(out.contains("x_count{method=\"a\\\"b\"} 3\n"), "{out}");
        let mut empty = String::new();
        DurationHistogram::new().write("x", "m", &mut empty);
        assert!(empty.is_empty());
    }
}
