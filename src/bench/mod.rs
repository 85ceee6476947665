//! `versile bench`: round-trip and throughput measurements against a raw
//! tokio TCP ping-pong baseline measured in the same run.
//!
//! (Being implemented.)

use std::time::Duration;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Payload size in bytes for echo calls and the baseline ping-pong.
    pub payload: usize,
    /// Sequential round trips to time.
    pub iterations: usize,
    /// Calls kept in flight for the pipelined measurement.
    pub in_flight: usize,
    /// Duration of the pipelined measurement.
    pub duration: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            payload: 32,
            iterations: 20_000,
            in_flight: 64,
            duration: Duration::from_secs(3),
        }
    }
}

/// Results; `Display` prints a table, [`to_json`](Self::to_json) one object.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub baseline_rtt_us_p50: f64,
    pub baseline_rtt_us_p99: f64,
    pub plain_rtt_us_p50: f64,
    pub plain_rtt_us_p99: f64,
    pub plain_pipelined_calls_per_s: f64,
}

impl BenchReport {
    /// One JSON object with every figure.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "baseline_rtt_us_p50": self.baseline_rtt_us_p50,
            "baseline_rtt_us_p99": self.baseline_rtt_us_p99,
            "plain_rtt_us_p50": self.plain_rtt_us_p50,
            "plain_rtt_us_p99": self.plain_rtt_us_p99,
            "plain_pipelined_calls_per_s": self.plain_pipelined_calls_per_s,
        })
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:#}", self.to_json())
    }
}

/// Run every measurement on the current runtime.
pub async fn run(_options: BenchOptions) -> std::io::Result<BenchReport> {
    Err(std::io::Error::other("benchmark not implemented yet"))
}
