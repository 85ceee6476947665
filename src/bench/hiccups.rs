//! `versile bench --hiccups`: how often, and for how long, this machine
//! takes the CPU away from a thread that never sleeps.
//!
//! A loop reads the monotonic clock back to back for `duration`; a gap
//! between two readings longer than `threshold` (default 5 µs, a few
//! hundred times a clock read) is time the thread did not run: a timer
//! interrupt, another task, the hypervisor. On the 2-vCPU VMs these figures
//! come from, the kernel's 250 Hz tick alone costs 30–60 µs every 4 ms
//! (`docs/performance.md`, "Tails: what the machine takes"), which is what
//! bounds a 20 µs round trip's p99: a call meets a hiccup with a
//! probability of about `gaps_per_s` × its duration, and once that passes
//! 1 %, p99 is a call with a hiccup in it, whatever the code does.
//!
//! Run it under the same `taskset` as the benchmark it explains; it
//! measures whichever CPU the scheduler gives this thread.

use std::fmt;
use std::time::{Duration, Instant};

use super::{allowed_cpus, round2, Latency, Recorder};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct HiccupOptions {
    /// How long to spin.
    pub duration: Duration,
    /// Gaps between clock readings longer than this count as hiccups.
    pub threshold: Duration,
}

impl Default for HiccupOptions {
    fn default() -> Self {
        HiccupOptions {
            duration: Duration::from_secs(2),
            threshold: Duration::from_micros(5),
        }
    }
}

/// The hiccups one spinning thread saw.
#[derive(Debug, Clone)]
pub struct HiccupReport {
    /// CPUs this process may run on (`taskset`), as the kernel lists them.
    pub cpus: String,
    /// The threshold a gap had to pass.
    pub threshold: Duration,
    /// Wall time spun.
    pub elapsed: Duration,
    /// Clock readings taken.
    pub readings: u64,
    /// Gaps above the threshold.
    pub gaps: u64,
    /// Their total length.
    pub lost: Duration,
    /// Their lengths' percentiles.
    pub gap: Latency,
}

impl HiccupReport {
    /// Hiccups per second of spinning.
    pub fn gaps_per_s(&self) -> f64 {
        self.gaps as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Share of the time the thread did not run (0 to 1).
    pub fn lost_fraction(&self) -> f64 {
        self.lost.as_secs_f64() / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Mean hiccup length in µs (0 without any).
    pub fn mean_gap_us(&self) -> f64 {
        if self.gaps == 0 {
            return 0.0;
        }
        self.lost.as_secs_f64() * 1e6 / self.gaps as f64
    }

    /// One JSON object, every time in µs.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "hiccups": "busy loop, gaps between clock readings",
            "cpus": self.cpus,
            "threshold_us": round2(self.threshold.as_secs_f64() * 1e6),
            "seconds": round2(self.elapsed.as_secs_f64()),
            "readings": self.readings,
            "gaps": self.gaps,
            "gaps_per_s": round2(self.gaps_per_s()),
            "mean_gap_us": round2(self.mean_gap_us()),
            "lost_percent": round2(self.lost_fraction() * 100.0),
            "gap_us": self.gap.to_json(),
        })
    }
}

impl fmt::Display for HiccupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "versile bench --hiccups: {:.1} s spinning on CPUs {}, gaps above {:.1} µs",
            self.elapsed.as_secs_f64(),
            self.cpus,
            self.threshold.as_secs_f64() * 1e6
        )?;
        writeln!(
            f,
            "{:.0} hiccups/s, mean {:.1} µs (p50 {:.1}, p99 {:.1}, max {:.1}), {:.2} % of the time lost",
            self.gaps_per_s(),
            self.mean_gap_us(),
            self.gap.p50_us,
            self.gap.p99_us,
            self.gap.max_us,
            self.lost_fraction() * 100.0
        )
    }
}

/// Spin on the calling thread for `options.duration` (blocking: call it
/// outside any async runtime's worker).
pub fn measure_hiccups(options: HiccupOptions) -> HiccupReport {
    spin(Instant::now, options)
}

/// The loop, with the clock as a parameter so tests can feed it gaps.
fn spin(mut clock: impl FnMut() -> Instant, options: HiccupOptions) -> HiccupReport {
    let mut gap = Recorder::new();
    let (mut readings, mut gaps, mut lost) = (0u64, 0u64, Duration::ZERO);
    let start = clock();
    let mut last = start;
    loop {
        let now = clock();
        readings += 1;
        let d = now - last;
        if d > options.threshold {
            gaps += 1;
            lost += d;
            gap.record(d);
        }
        last = now;
        if now - start >= options.duration {
            break;
        }
    }
    HiccupReport {
        cpus: allowed_cpus().unwrap_or_else(|| "?".to_owned()),
        threshold: options.threshold,
        elapsed: last - start,
        readings,
        gaps,
        lost,
        gap: gap.summary(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_above_the_threshold_are_counted_and_summed() {
        // A clock that ticks 1 µs per reading, with a 40 µs gap every
        // 1,000 readings: 10 ms in all.
        let start = Instant::now();
        let mut t = Duration::ZERO;
        let mut n = 0u64;
        let clock = move || {
            n += 1;
            t += if n.is_multiple_of(1_000) {
                Duration::from_micros(40)
            } else {
                Duration::from_micros(1)
            };
            start + t
        };
        let r = spin(
            clock,
            HiccupOptions {
                duration: Duration::from_millis(10),
                threshold: Duration::from_micros(5),
            },
        );
        assert!(r.gaps >= 9 && r.gaps <= 10, "{r:?}");
        assert_eq!(r.lost, Duration::from_micros(40) * r.gaps as u32);
        assert!((r.mean_gap_us() - 40.0).abs() < 0.01, "{r:?}");
        assert!((r.gap.max_us - 40.0).abs() < 0.1, "{r:?}");
        let per_s = r.gaps_per_s();
        assert!((700.0..=1_100.0).contains(&per_s), "{per_s}");
        assert_eq!(r.to_json()["gaps"], r.gaps);
    }

    #[test]
    fn a_real_run_accounts_for_its_time() {
        let r = measure_hiccups(HiccupOptions {
            duration: Duration::from_millis(50),
            threshold: Duration::from_micros(5),
        });
        assert!(r.elapsed >= Duration::from_millis(50), "{r:?}");
        assert!(
            r.readings > 1_000,
            "a clock read takes far less than 50 µs: {r:?}"
        );
        assert!(r.lost <= r.elapsed, "{r:?}");
        assert_eq!(r.gaps == 0, r.mean_gap_us() == 0.0);
    }

    #[test]
    fn a_threshold_above_the_run_sees_no_gaps() {
        let r = measure_hiccups(HiccupOptions {
            duration: Duration::from_millis(5),
            threshold: Duration::from_secs(10),
        });
        assert_eq!(r.gaps, 0);
        assert_eq!(r.lost, Duration::ZERO);
        assert_eq!(r.mean_gap_us(), 0.0);
        assert_eq!(r.gap, Latency::default());
    }
}
