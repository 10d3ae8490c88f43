//! The server's CPU and memory during the gateway run, read from /proc for `--server-pid`
//! (a local server; the server reports neither itself yet). CPU is user + system time from
//! /proc/PID/stat; memory is VmRSS from /proc/PID/status, sampled every second for the peak.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Failure;

/// Clock ticks per second of /proc/PID/stat's times: USER_HZ, 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// What the server used during the run.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// CPU seconds (user + system) used during the run.
    pub cpu_seconds: f64,
    /// `cpu_seconds` / elapsed: cores kept busy on average.
    pub cores: f64,
    /// Largest resident set seen (sampled every second), MiB.
    pub peak_rss_mib: f64,
    /// Resident set at the end, MiB.
    pub final_rss_mib: f64,
}

/// A server being watched.
pub struct Watch {
    pid: u32,
    cpu_before: f64,
    started: Instant,
    sampler: JoinHandle<()>,
    peak: watch::Receiver<f64>,
}

fn read(pid: u32, file: &str) -> Result<String, Failure> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map_err(|e| Failure::usage(format!("--server-pid {pid}: /proc/{pid}/{file}: {e}")))
}

/// CPU seconds from the text of /proc/PID/stat: utime and stime, fields 14 and 15. The
/// command name (field 2) may hold spaces and parentheses, so fields count from its last `)`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so field N is index N - 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// VmRSS in MiB from the text of /proc/PID/status (`VmRSS:   12345 kB`).
pub fn rss_mib(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn sample(pid: u32) -> Result<(f64, f64), Failure> {
    let bad = || Failure::usage(format!("--server-pid {pid}: unreadable /proc entries"));
    let cpu = cpu_seconds(&read(pid, "stat")?).ok_or_else(bad)?;
    let rss = rss_mib(&read(pid, "status")?).ok_or_else(bad)?;
    Ok((cpu, rss))
}

impl Watch {
    /// Starts watching `pid`; fails at once when it cannot be read.
    pub fn start(pid: u32) -> Result<Self, Failure> {
        let (cpu_before, rss) = sample(pid)?;
        let (peak_tx, peak) = watch::channel(rss);
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                if let Ok((_, rss)) = sample(pid) {
                    peak_tx.send_if_modified(|peak| {
                        let higher = rss > *peak;
                        *peak = peak.max(rss);
                        higher
                    });
                }
            }
        });
        Ok(Self {
            pid,
            cpu_before,
            started: Instant::now(),
            sampler,
            peak,
        })
    }

    /// What the server used since [`Watch::start`].
    pub fn finish(self) -> Result<Usage, Failure> {
        self.sampler.abort();
        let (cpu_after, rss) = sample(self.pid)?;
        let cpu_seconds = (cpu_after - self.cpu_before).max(0.0);
        Ok(Usage {
            cpu_seconds,
            cores: cpu_seconds / self.started.elapsed().as_secs_f64(),
            peak_rss_mib: self.peak.borrow().max(rss),
            final_rss_mib: rss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counts_fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100";
        assert_eq!(cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn rss_is_read_in_mebibytes() {
        let status = "Name:\tstreamgate\nVmHWM:\t 4096 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(rss_mib(status), Some(2.0));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let (cpu, rss) = sample(std::process::id()).expect("own /proc entries");
        assert!(cpu >= 0.0 && rss > 0.0);
    }
}
