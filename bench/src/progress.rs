//! The progress line on standard error, once a second: records so far and the rate over the
//! last second. On a terminal it is rewritten in place (`\r`); piped, one line per second,
//! so a log keeps the whole history. Off with `--json`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::stats::Tally;

/// A running progress line; [`Progress::stop`] ends it.
pub struct Progress {
    task: Option<JoinHandle<()>>,
    live: bool,
}

impl Progress {
    /// Starts reporting `tally` under `label`, out of `total` records; nothing when `quiet`.
    pub fn start(label: String, total: u64, tally: &Tally, quiet: bool) -> Self {
        let live = std::io::stderr().is_terminal();
        if quiet {
            return Self { task: None, live };
        }
        let tally = tally.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.tick().await;
            let (mut last_records, mut last_at) = (0, Instant::now());
            loop {
                ticks.tick().await;
                let (records, now) = (tally.records(), Instant::now());
                let rate =
                    records.saturating_sub(last_records) as f64 / (now - last_at).as_secs_f64();
                (last_records, last_at) = (records, now);
                let errors = match tally.errors() {
                    0 => String::new(),
                    n => format!(", {n} errors"),
                };
                let line = format!(
                    "{label}: {records}/{total} records, {rate:.0} records/s{errors}, {:.0} s",
                    now.saturating_duration_since(tally.started()).as_secs_f64()
                );
                let mut err = std::io::stderr().lock();
                // Progress is best effort: a closed standard error must not stop the bench.
                let _ = if live {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
        });
        Self {
            task: Some(task),
            live,
        }
    }

    /// Stops the line, ending it on a terminal so the report starts on a line of its own.
    pub fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            if self.live {
                eprint!("\r\x1b[2K");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
