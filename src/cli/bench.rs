//! `versile bench`: run [`versile::bench::run`] and print its report.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use versile::bench::BenchOptions;

use super::{fail, parse_secs, runtime, EXIT_FAILURE};

/// Measure call round trips and pipelined throughput over loopback, PLAIN
/// and VTS, and VTS connections per second, against a raw TCP ping-pong
/// baseline measured in the same run.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print one line of JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Payload size in bytes for echo calls and the baseline ping-pong.
    #[arg(long, value_name = "BYTES", default_value_t = BenchOptions::default().payload)]
    payload: usize,
    /// Sequential round trips to time.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().iterations)]
    iterations: usize,
    /// Calls kept in flight for the pipelined measurement.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().in_flight)]
    in_flight: usize,
    /// Untimed round trips before each sequential phase.
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().warmup)]
    warmup: usize,
    /// Duration of the pipelined measurement, in seconds.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_secs)]
    duration: Duration,
    /// Run each server half on its own thread and the client on a
    /// current-thread runtime, so `taskset -c 0,1` can put the two ends on
    /// different CPUs (and `taskset -c 0` on the same one).
    #[arg(long)]
    split: bool,
    /// Full VTS connections to time (bounded by --duration too).
    #[arg(long, value_name = "N", default_value_t = BenchOptions::default().handshakes)]
    handshakes: usize,
}

pub fn run(args: BenchArgs) -> ExitCode {
    let rt = match runtime(!args.split) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = BenchOptions {
        payload: args.payload,
        iterations: args.iterations,
        in_flight: args.in_flight,
        warmup: args.warmup,
        duration: args.duration,
        handshakes: args.handshakes,
        split: args.split,
    };
    match rt.block_on(versile::bench::run(options)) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_FAILURE, format!("benchmark failed: {e}")),
    }
}
