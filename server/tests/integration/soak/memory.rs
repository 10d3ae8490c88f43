//! The resident memory of this process (the server runs in it, with the soak's clients and
//! ledger), sampled every second: `VmRSS` from `/proc/self/status`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Resident set size now, in KiB; `None` where `/proc` is not there.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples (seconds since `start`, KiB), one a second.
#[derive(Debug, Default, Clone)]
pub struct Samples(pub Vec<(f64, u64)>);

impl Samples {
    /// The largest sample taken between two fractions of `run` (0.0 to 1.0) after the start.
    pub fn max_between(&self, run: Duration, from: f64, to: f64) -> Option<u64> {
        let (from, to) = (run.as_secs_f64() * from, run.as_secs_f64() * to);
        self.0
            .iter()
            .filter(|(t, _)| (from..=to).contains(t))
            .map(|(_, kib)| *kib)
            .max()
    }

    /// The sample nearest to a fraction of `run`, in MiB, for the report.
    pub fn mib_at(&self, run: Duration, at: f64) -> f64 {
        let t = run.as_secs_f64() * at;
        let nearest = self
            .0
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()));
        nearest.map_or(0.0, |(_, kib)| *kib as f64 / 1024.0)
    }
}

/// Samples every second until `stop`.
pub async fn sample(samples: Arc<Mutex<Samples>>, stop: CancellationToken) {
    let start = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Some(kib) = rss_kib() {
            let at = start.elapsed().as_secs_f64();
            samples.lock().expect("not poisoned").0.push((at, kib));
        }
    }
}
