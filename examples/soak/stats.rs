//! What the soak counts and measures: named counters (calls by outcome,
//! faults by kind and by what the server did about them, failures), the
//! panic hook, RSS from `/proc/self/status`, and the server's gauges read
//! back from the Prometheus recorder.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Counters by name; cheap to clone. Names starting with `failure.` make
/// the soak fail.
#[derive(Clone, Default)]
pub struct Stats {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// First few failure descriptions, for the report.
    notes: Arc<Mutex<Vec<String>>>,
}

/// How many failure descriptions the summary keeps.
const MAX_NOTES: usize = 20;

impl Stats {
    pub fn add(&self, name: impl AsRef<str>) {
        self.add_n(name, 1);
    }

    pub fn add_n(&self, name: impl AsRef<str>, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(name.as_ref().to_owned()).or_default() += n;
    }

    /// Count a failure (`failure.<kind>`) and keep its description.
    pub fn fail(&self, kind: &str, detail: impl Into<String>) {
        self.add(format!("failure.{kind}"));
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.len() < MAX_NOTES {
            // Also at once, so that a long run shows when it happened.
            let note = format!("{kind}: {}", detail.into());
            println!("soak: failure {note}");
            notes.push(note);
        }
    }

    /// Sum of every counter whose name starts with `prefix`.
    pub fn sum(&self, prefix: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Panics seen anywhere in the process (tasks included: tokio catches
/// them, but the hook runs first).
pub static PANICS: AtomicU64 = AtomicU64::new(0);
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Count every panic, keep the first message, and still print it.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        let mut first = FIRST_PANIC.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(info.to_string());
        }
        drop(first);
        previous(info);
    }));
}

pub fn first_panic() -> Option<String> {
    FIRST_PANIC
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`), in bytes.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time this process has used (user + system), from
/// `/proc/self/stat` (clock ticks of 1/100 s on Linux).
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces): state is
    // the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A Prometheus recorder as the process-wide `metrics` recorder, without
/// the upkeep task of `versile::ops::install_prometheus` (the soak counts
/// tasks, and its counters need no histogram upkeep).
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    Ok(handle)
}

/// The value of an unlabelled metric in a Prometheus text page (0 when
/// absent: a gauge never touched).
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Every sample of a labelled metric family, `name{labels} value`.
pub fn family(page: &str, name: &str) -> Vec<(String, f64)> {
    page.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}
