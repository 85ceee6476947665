//! Latency recording for `versile bench`: round-trip times go into an HDR
//! histogram (nanoseconds, 1 ns to 60 s, 3 significant digits: every value
//! within 0.1 %), which costs a bucket increment per call and a fixed
//! ~200 KiB however long the run; [`Recorder::summary`] reads the
//! percentiles every report quotes (p50, p90, p99, p99.9, max) in µs.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Largest latency recorded exactly; longer ones count as this (a round
/// trip of a minute is a failure, not a latency).
const MAX_NS: u64 = 60_000_000_000;
/// 3 significant digits: 0.1 % resolution, the usual HDR setting.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one phase (or one connection of a phase, merged later).
#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty histogram (1 ns to 60 s, 3 significant digits).
    pub fn new() -> Self {
        Recorder {
            // Constant, valid bounds: 1 ≤ low, high ≥ 2 × low, digits ≤ 5.
            hist: Histogram::new_with_bounds(1, MAX_NS, SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Count one latency; above 60 s it counts as 60 s.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(MAX_NS);
        self.hist.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Add `other`'s samples (same bounds, so this cannot fail).
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.hist.add(&other.hist);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The percentiles every report quotes, in µs.
    pub fn summary(&self) -> Latency {
        if self.hist.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50_us: us(self.hist.value_at_quantile(0.50)),
            p90_us: us(self.hist.value_at_quantile(0.90)),
            p99_us: us(self.hist.value_at_quantile(0.99)),
            p999_us: us(self.hist.value_at_quantile(0.999)),
            max_us: us(self.hist.max()),
        }
    }
}

/// Latency percentiles in µs (0 when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest sample.
    pub max_us: f64,
}

impl Latency {
    /// `{"p50": .., "p90": .., "p99": .., "p99_9": .., "max": ..}` in µs.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": super::round2(self.p50_us),
            "p90": super::round2(self.p90_us),
            "p99": super::round2(self.p99_us),
            "p99_9": super::round2(self.p999_us),
            "max": super::round2(self.max_us),
        })
    }
}

/// Every timed call of a sequential phase in order: when it started, from
/// the first one's start, and how long it took (`versile bench
/// --latency-log`). A histogram says how slow the tail is; this says *when*
/// the slow calls came, so a period (a 4 ms kernel tick, a 10 ms host
/// timer) shows up: `scripts/tail-timeline.py` looks for one. 32 bytes a
/// call, so it is off unless asked for.
#[derive(Clone, Default)]
pub struct CallLog {
    origin: Option<Instant>,
    calls: Vec<(Duration, Duration)>,
}

impl CallLog {
    /// An empty log with room for `calls` entries.
    pub fn with_capacity(calls: usize) -> Self {
        CallLog {
            origin: None,
            calls: Vec::with_capacity(calls),
        }
    }

    /// One call that started at `started` and took `took`.
    pub fn push(&mut self, started: Instant, took: Duration) {
        let origin = *self.origin.get_or_insert(started);
        self.calls
            .push((started.saturating_duration_since(origin), took));
    }

    /// Calls logged.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// `start_us latency_us` a line, after a `#` header line.
    pub fn write_to(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(out, "# start_us latency_us")?;
        for (start, took) in &self.calls {
            let us = |d: &Duration| d.as_nanos() as f64 / 1000.0;
            writeln!(out, "{:.3} {:.3}", us(start), us(took))?;
        }
        out.flush()
    }
}

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallLog({} calls)", self.calls.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_resolution() {
        let mut r = Recorder::new();
        for i in 1..=1000u64 {
            r.record(Duration::from_micros(i));
        }
        let s = r.summary();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(close(s.p50_us, 500.0), "{s:?}");
        assert!(close(s.p90_us, 900.0), "{s:?}");
        assert!(close(s.p99_us, 990.0), "{s:?}");
        assert!(close(s.p999_us, 999.0), "{s:?}");
        assert!(close(s.max_us, 1000.0), "{s:?}");
        assert_eq!(Recorder::new().summary(), Latency::default());
    }

    #[test]
    fn merge_and_saturate() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_secs(3600)); // beyond the range: saturates
        b.record(Duration::ZERO); // below it: counted as 1 ns
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.summary().max_us >= 59_000_000.0);
    }

    #[test]
    fn call_log_lines_start_from_the_first_call() {
        let mut log = CallLog::with_capacity(2);
        assert!(log.is_empty());
        let t0 = Instant::now();
        log.push(t0, Duration::from_micros(20));
        log.push(t0 + Duration::from_micros(25), Duration::from_nanos(40_500));
        assert_eq!(log.len(), 2);
        let mut out = Vec::new();
        log.write_to(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# start_us latency_us\n0.000 20.000\n25.000 40.500\n"
        );
        assert_eq!(format!("{log:?}"), "CallLog(2 calls)");
    }
}
