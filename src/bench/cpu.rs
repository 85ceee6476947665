//! Process CPU time, read from `/proc` (Linux), without `unsafe` or libc:
//! of this process ([`process_cpu_time`], the figure `getrusage(RUSAGE_SELF)`
//! gives, at nanosecond rather than tick resolution) or of another one by
//! pid ([`cpu_time_of`], a server's under `versile bench VRI --server-pid`).
//!
//! The primary source is the sum of the first field of
//! `/proc/PID/task/*/schedstat`: on-CPU nanoseconds of every live thread
//! (user + system). Threads that exit between two readings drop out of the
//! sum; during a benchmark phase the tokio workers live on, so this is exact
//! for our purpose. Where schedstat is missing, `utime + stime` from
//! `/proc/PID/stat` is used instead, in clock ticks of `USER_HZ`, which the
//! kernel fixes at 100 for `/proc` on every architecture we run on (10 ms
//! resolution: fine over a phase of ~1 s, not for single calls).

use std::time::Duration;

/// Process CPU time so far, or `None` where `/proc` is not available.
pub fn process_cpu_time() -> Option<Duration> {
    cpu_time_at("/proc/self")
}

/// CPU time so far of process `pid`, or `None` if it cannot be read (no
/// such process, or no `/proc`).
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    cpu_time_at(&format!("/proc/{pid}"))
}

fn cpu_time_at(proc_dir: &str) -> Option<Duration> {
    schedstat_total(proc_dir).or_else(|| stat_ticks(proc_dir))
}

fn schedstat_total(proc_dir: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut any = false;
    for entry in std::fs::read_dir(format!("{proc_dir}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue; // the thread exited meanwhile
        };
        let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
        total += ns;
        any = true;
    }
    any.then(|| Duration::from_nanos(total))
}

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/self/stat`.
const USER_HZ: u64 = 100;

fn stat_ticks(proc_dir: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after the
    // closing parenthesis are plain. utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / USER_HZ))
}

/// The CPUs this process may run on (`Cpus_allowed_list` in
/// `/proc/self/status`, e.g. `"0"` under `taskset -c 0`).
pub fn allowed_cpus() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_advances() {
        let Some(a) = process_cpu_time() else { return };
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let b = process_cpu_time().expect("still readable");
        assert!(b > a, "{a:?} -> {b:?} ({x})");
        assert!(stat_ticks("/proc/self").is_some());
        let own = cpu_time_of(std::process::id()).expect("own pid readable");
        assert!(own >= b);
        assert_eq!(cpu_time_of(u32::MAX), None);
    }
}
