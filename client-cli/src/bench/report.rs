//! The figures of a run and how they are printed: a few readable lines, or one JSON object.
//!
//! The window: the figures count what was done after the warm-up (`--warmup`, 1 s), up to
//! the end of the run; for e2e, the records *sent* after the warm-up. A run shorter than
//! twice the warm-up is measured whole, and the report says so; so is the other side of a
//! `--direct` comparison then, so that the ratio compares like with like.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::plan::Plan;
use super::server::Usage;
use super::stats::{Measured, Percentiles};
use crate::Failure;

/// The figures of one run, gateway or direct.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Records done in the whole run.
    pub records: u64,
    /// The whole run, from the clock's start.
    pub elapsed: Duration,
    /// Start and end of the measured window, from the clock's start.
    pub window: (Duration, Duration),
    /// Records done in the window.
    pub window_records: u64,
    /// Records per second over the window.
    pub records_per_s: f64,
    /// Value megabytes (10^6 bytes) per second over the window.
    pub mb_per_s: f64,
    /// Latencies in the window, where the workload has them.
    pub latency: Option<Percentiles>,
    /// Failures by code, whole run.
    pub errors: BTreeMap<String, u64>,
}

impl Figures {
    /// Whether `measured` is long enough to leave its warm-up out.
    pub fn can_window(measured: &Measured) -> bool {
        measured.elapsed >= measured.warmup * 2 && measured.counts.window.records > 0
    }

    /// The figures of `measured`, for values of `size` bytes: over the window when
    /// `windowed`, else over the whole run.
    pub fn new(measured: &Measured, size: usize, windowed: bool) -> Self {
        let counts = &measured.counts;
        let (window, part) = if windowed {
            ((measured.warmup, measured.elapsed), &counts.window)
        } else {
            ((Duration::ZERO, measured.elapsed), &counts.all)
        };
        let seconds = (window.1 - window.0).as_secs_f64().max(1e-9);
        let records_per_s = part.records as f64 / seconds;
        Self {
            records: counts.all.records,
            elapsed: measured.elapsed,
            window,
            window_records: part.records,
            records_per_s,
            mb_per_s: records_per_s * size as f64 / 1e6,
            latency: part.percentiles(),
            errors: counts.errors.clone(),
        }
    }

    fn window_text(&self) -> String {
        if self.window.0.is_zero() {
            format!(
                "whole run, {:.2} s (this run or the other side's was shorter than twice the warm-up)",
                self.window.1.as_secs_f64()
            )
        } else {
            format!(
                "{:.2} s .. {:.2} s, after the warm-up",
                self.window.0.as_secs_f64(),
                self.window.1.as_secs_f64()
            )
        }
    }

    fn line(&self) -> String {
        let latency = self.latency.map_or_else(String::new, |p| {
            format!(
                "\n  latency ms  : p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                p.p50, p.p90, p.p99, p.max
            )
        });
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            let each: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            each.join(", ")
        };
        format!(
            "  throughput  : {:.0} records/s, {:.2} MB/s{latency}\n  records     : {} in {:.2} s; window {}: {} records\n  errors      : {errors}",
            self.records_per_s,
            self.mb_per_s,
            self.records,
            self.elapsed.as_secs_f64(),
            self.window_text(),
            self.window_records,
        )
    }

    fn latency_json(&self) -> Value {
        self.latency.map_or(
            Value::Null,
            |p| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max}),
        )
    }

    fn window_json(&self) -> Value {
        json!({
            "start_s": self.window.0.as_secs_f64(),
            "end_s": self.window.1.as_secs_f64(),
            "records": self.window_records,
            "whole_run": self.window.0.is_zero(),
        })
    }
}

/// The records the subscribe workload published first, so the topic held enough.
#[derive(Debug, Clone, Copy)]
pub struct Preload {
    /// Records published.
    pub records: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Everything a bench prints.
#[derive(Debug)]
pub struct Report {
    /// What ran.
    pub plan: Plan,
    /// Through streamgate.
    pub gateway: Figures,
    /// Straight on Kafka, with --direct.
    pub direct: Option<Figures>,
    /// Records published before a subscribe run.
    pub preload: Option<Preload>,
    /// The server's usage, with --server-pid.
    pub server: Option<Usage>,
}

impl Report {
    /// gateway / direct records per second.
    fn ratio(&self) -> Option<f64> {
        let direct = self.direct.as_ref()?;
        (direct.records_per_s > 0.0).then(|| self.gateway.records_per_s / direct.records_per_s)
    }

    /// Prints the report on standard output.
    pub fn print(&self, as_json: bool) -> Result<(), Failure> {
        let text = if as_json {
            self.json().to_string()
        } else {
            self.text()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").map_err(Failure::io)
    }

    fn text(&self) -> String {
        let plan = &self.plan;
        let mut text = format!(
            "bench {}: {} records of {} bytes, topic {}, {}",
            plan.name(),
            plan.records,
            plan.size,
            plan.topic,
            in_flight(plan)
        );
        if let Some(preload) = self.preload {
            text.push_str(&format!(
                "\npreload     : published {} records first in {:.2} s (not in the figures)",
                preload.records,
                preload.elapsed.as_secs_f64()
            ));
        }
        text.push_str(&format!("\ngateway\n{}", self.gateway.line()));
        if let Some(direct) = &self.direct {
            text.push_str(&format!("\ndirect (librdkafka)\n{}", direct.line()));
        }
        if let Some(ratio) = self.ratio() {
            text.push_str(&format!("\nratio gateway/direct: {ratio:.2}"));
        }
        if let Some(server) = self.server {
            text.push_str(&format!(
                "\nserver      : {:.2} CPU cores ({:.1} CPU s), RSS peak {:.1} MiB, final {:.1} MiB",
                server.cores, server.cpu_seconds, server.peak_rss_mib, server.final_rss_mib
            ));
        }
        text
    }

    fn json(&self) -> Value {
        let (plan, gateway) = (&self.plan, &self.gateway);
        let mut object = json!({
            "workload": plan.name(),
            "topic": plan.topic,
            "size": plan.size,
            "concurrency": plan.concurrency,
            "records": gateway.records,
            "elapsed_s": gateway.elapsed.as_secs_f64(),
            "window": gateway.window_json(),
            "records_per_s": gateway.records_per_s,
            "mb_per_s": gateway.mb_per_s,
            "latency_ms": gateway.latency_json(),
            "errors": gateway.errors,
            "preload": self.preload.map(|p| json!({"records": p.records, "elapsed_s": p.elapsed.as_secs_f64()})),
            "server_cpu": self.server.map(|s| json!({"cores": s.cores, "seconds": s.cpu_seconds})),
            "server_rss_mib": self.server.map(|s| json!({"peak": s.peak_rss_mib, "final": s.final_rss_mib})),
        });
        if let (Some(direct), Value::Object(map)) = (&self.direct, &mut object) {
            map.insert("direct_records".into(), json!(direct.records));
            map.insert(
                "direct_elapsed_s".into(),
                json!(direct.elapsed.as_secs_f64()),
            );
            map.insert("direct_window".into(), direct.window_json());
            map.insert("direct_records_per_s".into(), json!(direct.records_per_s));
            map.insert("direct_mb_per_s".into(), json!(direct.mb_per_s));
            map.insert("direct_latency_ms".into(), direct.latency_json());
            map.insert("direct_errors".into(), json!(direct.errors));
            map.insert("ratio".into(), json!(self.ratio()));
        }
        object
    }
}

fn in_flight(plan: &Plan) -> String {
    use crate::args::BenchWorkload;
    match plan.workload {
        BenchWorkload::Publish => format!("{} calls in flight", plan.concurrency),
        BenchWorkload::PublishStream => format!(
            "{} streams of up to {} records in flight",
            plan.concurrency,
            super::plan::STREAM_WINDOW
        ),
        BenchWorkload::Subscribe => "one Subscribe stream from earliest".to_owned(),
        BenchWorkload::E2e => format!("one stream each way at {:.0} records/s", plan.rate),
    }
}
