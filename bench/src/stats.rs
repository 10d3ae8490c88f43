//! What a run counts, in bounded memory: records done, errors by gRPC code, and latencies in
//! HDR histograms (never a list of samples), both over the whole run and over the
//! measurement window that starts when the warm-up ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Longest latency the histograms resolve, in microseconds (longer ones count as this).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Records and latencies of one part of a run (the whole run, or the window).
#[derive(Debug)]
pub struct Part {
    /// Records done.
    pub records: u64,
    latencies: Histogram<u64>,
}

impl Part {
    fn new() -> Self {
        Self {
            records: 0,
            // Three significant digits: ~100 KiB per histogram, whatever the record count.
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant, valid bounds"),
        }
    }

    fn add(&mut self, records: u64, latency: Option<Duration>) {
        self.records += records;
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latencies.saturating_record(micros.max(1));
        }
    }

    /// The percentiles, or `None` when no latency was recorded (a workload without one).
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.latencies.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(self.latencies.value_at_quantile(0.50)),
            p90: ms(self.latencies.value_at_quantile(0.90)),
            p99: ms(self.latencies.value_at_quantile(0.99)),
            max: ms(self.latencies.max()),
        })
    }
}

/// What a filtered subscribe run received, beside the records it read (its `records`):
/// whole run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Records received.
    pub records: u64,
    /// Bytes of the messages that carried them, as received.
    pub bytes: u64,
}

/// Everything counted during a run.
#[derive(Debug)]
pub struct Counts {
    /// The whole run.
    pub all: Part,
    /// Records done after the warm-up.
    pub window: Part,
    /// Failed calls or records, by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// Records and bytes received, when they are not the records done (a filtered read).
    pub delivered: Delivered,
    started: Instant,
    warmup: Duration,
}

impl Counts {
    fn new(warmup: Duration) -> Self {
        Self {
            all: Part::new(),
            window: Part::new(),
            errors: BTreeMap::new(),
            delivered: Delivered::default(),
            started: Instant::now(),
            warmup,
        }
    }
}

/// The end of a run: how long it took and what it counted.
#[derive(Debug)]
pub struct Measured {
    /// From the start (or restart) of the clock to the end of the run.
    pub elapsed: Duration,
    /// The warm-up the window leaves out.
    pub warmup: Duration,
    /// The counts.
    pub counts: Counts,
}

/// The counts of a run, shared by its tasks (a lock per record is cheap next to a gRPC call
/// or a Kafka delivery, and keeps one pair of histograms for the whole run).
#[derive(Debug, Clone)]
pub struct Tally {
    counts: Arc<Mutex<Counts>>,
}

impl Tally {
    /// A tally whose clock starts now and whose window opens after `warmup`.
    pub fn start(warmup: Duration) -> Self {
        Self {
            counts: Arc::new(Mutex::new(Counts::new(warmup))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A task that panicked mid-update leaves counts that are still counts.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the clock again, now: for a reader whose set-up ends with its first record.
    pub fn restart(&self) {
        self.lock().started = Instant::now();
    }

    /// When the clock started.
    pub fn started(&self) -> Instant {
        self.lock().started
    }

    /// One record done now, with its latency where the workload has one.
    pub fn done(&self, latency: Option<Duration>) {
        self.add(1, latency);
    }

    /// `records` records done now (a batch), without latencies.
    pub fn done_many(&self, records: u64) {
        self.add(records, None);
    }

    /// One record received now that was sent `latency` ago (e2e). It belongs to the window
    /// when it was *sent* after the warm-up: a record sent during start-up and received
    /// after it measures the start-up, not the path.
    pub fn received(&self, latency: Duration) {
        let sent = Instant::now().checked_sub(latency);
        self.add_at(sent, 1, Some(latency));
    }

    fn add(&self, records: u64, latency: Option<Duration>) {
        self.add_at(Some(Instant::now()), records, latency);
    }

    fn add_at(&self, at: Option<Instant>, records: u64, latency: Option<Duration>) {
        let mut counts = self.lock();
        counts.all.add(records, latency);
        if at.is_some_and(|at| at >= counts.started + counts.warmup) {
            counts.window.add(records, latency);
        }
    }

    /// `records` records received in messages of `bytes` bytes (a filtered read, whose
    /// records done are the records read).
    pub fn delivered(&self, records: u64, bytes: u64) {
        let mut counts = self.lock();
        counts.delivered.records += records;
        counts.delivered.bytes += bytes;
    }

    /// One failure with this gRPC code name.
    pub fn error(&self, code: &str) {
        *self.lock().errors.entry(code.to_owned()).or_default() += 1;
    }

    /// Records done so far.
    pub fn records(&self) -> u64 {
        self.lock().all.records
    }

    /// Failures so far.
    pub fn errors(&self) -> u64 {
        self.lock().errors.values().sum()
    }

    /// The counts, taken at the end of the run.
    pub fn finish(&self) -> Measured {
        let mut counts = self.lock();
        let warmup = counts.warmup;
        let counts = std::mem::replace(&mut *counts, Counts::new(warmup));
        Measured {
            elapsed: counts.started.elapsed(),
            warmup,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_and_in_milliseconds() {
        let tally = Tally::start(Duration::ZERO);
        for ms in 1..=100 {
            tally.done(Some(Duration::from_millis(ms)));
        }
        let counts = tally.finish().counts;
        let p = counts.window.percentiles().expect("latencies");
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99 - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.1, "{p:?}");
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max);
    }

    #[test]
    fn a_record_received_after_the_warm_up_but_sent_during_it_stays_out() {
        let tally = Tally::start(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(150));
        tally.received(Duration::from_millis(40));
        tally.received(Duration::from_secs(1));
        let counts = tally.finish().counts;
        assert_eq!((counts.all.records, counts.window.records), (2, 1));
    }

    #[test]
    fn records_before_the_warm_up_ends_stay_out_of_the_window() {
        let tally = Tally::start(Duration::from_secs(3600));
        tally.done(Some(Duration::from_millis(5)));
        tally.done_many(2);
        tally.error("UNAVAILABLE");
        let counts = tally.finish().counts;
        assert_eq!(counts.all.records, 3);
        assert_eq!(counts.window.records, 0);
        assert!(counts.window.percentiles().is_none());
        assert_eq!(counts.errors["UNAVAILABLE"], 1);
    }
}
