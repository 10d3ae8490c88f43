//! The server's CPU and memory during the gateway run: from its `/metrics`
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, over the same connection
//! as the calls), or, for a local server with `--server-pid`, from /proc (user + system time
//! in /proc/PID/stat, VmRSS in /proc/PID/status). Memory is sampled every second for the
//! peak.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tower::ServiceExt;

use crate::Failure;

/// Clock ticks per second of /proc/PID/stat's times: USER_HZ, 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// Where the server's figures come from.
#[derive(Clone)]
pub enum Probe {
    /// /proc of a local process.
    Pid(u32),
    /// The server's own `/metrics`, with the bearer token when there is one.
    Metrics(Channel, Option<String>),
}

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
    probe: Probe,
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

/// CPU seconds and RSS in MiB, now.
async fn sample(probe: &Probe) -> Result<(f64, f64), Failure> {
    match probe {
        Probe::Pid(pid) => {
            let pid = *pid;
            let bad = || Failure::usage(format!("--server-pid {pid}: unreadable /proc entries"));
            let cpu = cpu_seconds(&read(pid, "stat")?).ok_or_else(bad)?;
            let rss = rss_mib(&read(pid, "status")?).ok_or_else(bad)?;
            Ok((cpu, rss))
        }
        Probe::Metrics(channel, token) => {
            let page = scrape(channel.clone(), token.as_deref()).await?;
            let figure = |name: &str| metric(&page, name);
            let missing = || Failure::unreachable("the server's /metrics has no process_* figures");
            let cpu = figure("process_cpu_seconds_total").ok_or_else(missing)?;
            let rss =
                figure("process_resident_memory_bytes").ok_or_else(missing)? / (1024.0 * 1024.0);
            Ok((cpu, rss))
        }
    }
}

/// `GET /metrics` over the calls' own connection.
async fn scrape(channel: Channel, token: Option<&str>) -> Result<String, Failure> {
    let mut request = http::Request::get("/metrics");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(tonic::body::Body::empty())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let failed = |e: &dyn std::fmt::Display| Failure::unreachable(format!("GET /metrics: {e}"));
    let response = channel.oneshot(request).await.map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(failed(&response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| failed(&e))?;
    String::from_utf8(body.to_bytes().to_vec()).map_err(|e| failed(&e))
}

/// The value of the unlabelled sample `name` in a metrics page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

impl Watch {
    /// Starts watching through `probe`; fails at once when it cannot be read.
    pub async fn start(probe: Probe) -> Result<Self, Failure> {
        let (cpu_before, rss) = sample(&probe).await?;
        let (peak_tx, peak) = watch::channel(rss);
        let sampled = probe.clone();
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                if let Ok((_, rss)) = sample(&sampled).await {
                    peak_tx.send_if_modified(|peak| {
                        let higher = rss > *peak;
                        *peak = peak.max(rss);
                        higher
                    });
                }
            }
        });
        Ok(Self {
            probe,
            cpu_before,
            started: Instant::now(),
            sampler,
            peak,
        })
    }

    /// What the server used since [`Watch::start`].
    pub async fn finish(self) -> Result<Usage, Failure> {
        self.sampler.abort();
        let (cpu_after, rss) = sample(&self.probe).await?;
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

    #[tokio::test]
    async fn this_process_can_be_sampled() {
        let (cpu, rss) = sample(&Probe::Pid(std::process::id()))
            .await
            .expect("own /proc entries");
        assert!(cpu >= 0.0 && rss > 0.0);
    }

    #[test]
    fn reads_an_unlabelled_sample_of_a_metrics_page() {
        let page = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_other 3\n";
        assert_eq!(metric(page, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(metric(page, "process_resident_memory_bytes"), None);
    }
}
