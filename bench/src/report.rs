//! The figures of a run and how they are printed: a few readable lines, or one JSON object.
//!
//! The window: the figures count what was done after the warm-up (`--warmup`, 1 s), up to
//! the end of the run; for e2e, the records *sent* after the warm-up. A run shorter than
//! twice the warm-up is measured whole, and the report says so; so is the other side of a
//! `--direct` comparison then, so that the ratio compares like with like.
//!
//! With `--rounds N` the figures are those of the median round (by ratio, or by throughput
//! without `--direct`), so that the ratio and the figures it is made of stay one run's;
//! every round's throughput and ratio are listed too.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Failure;
use crate::plan::Plan;
use crate::server::Usage;
use crate::stats::{Measured, Percentiles};

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

/// One round: the gateway run, the direct run after it (with `--direct`), and what the
/// server used during the gateway run.
#[derive(Debug)]
pub struct Round {
    /// Through streamgate.
    pub gateway: Figures,
    /// Straight on Kafka, with --direct.
    pub direct: Option<Figures>,
    /// The server's usage during the gateway run, when it can be read.
    pub server: Option<Usage>,
}

impl Round {
    /// The figures of a round, for values of `size` bytes.
    pub fn new(
        gateway: &Measured,
        direct: Option<&Measured>,
        server: Option<Usage>,
        size: usize,
    ) -> Self {
        // Both sides over the same kind of window, or the ratio would compare unlike figures.
        let windowed = Figures::can_window(gateway) && direct.is_none_or(Figures::can_window);
        Self {
            gateway: Figures::new(gateway, size, windowed),
            direct: direct.map(|d| Figures::new(d, size, windowed)),
            server,
        }
    }

    /// gateway / direct records per second.
    fn ratio(&self) -> Option<f64> {
        let direct = self.direct.as_ref()?;
        (direct.records_per_s > 0.0).then(|| self.gateway.records_per_s / direct.records_per_s)
    }

    /// What rounds are ranked by: the ratio, or without a direct side the throughput.
    fn rank(&self) -> f64 {
        match self.direct {
            Some(_) => self.ratio().unwrap_or(0.0),
            None => self.gateway.records_per_s,
        }
    }

    fn json(&self) -> Value {
        json!({
            "records_per_s": self.gateway.records_per_s,
            "direct_records_per_s": self.direct.as_ref().map(|d| d.records_per_s),
            "ratio": self.ratio(),
            "server_cpu_seconds": self.server.map(|s| s.cpu_seconds),
        })
    }
}

/// The index of the median round by [`Round::rank`] (the lower of the two middle ones for
/// an even count: the report never flatters).
fn median(rounds: &[Round]) -> usize {
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| rounds[a].rank().total_cmp(&rounds[b].rank()));
    order
        .get(rounds.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// Everything a bench prints.
#[derive(Debug)]
pub struct Report {
    /// What ran.
    pub plan: Plan,
    /// Records published before a subscribe run.
    pub preload: Option<Preload>,
    /// Every round, in the order they ran (at least one).
    rounds: Vec<Round>,
    /// The median round, whose figures are the report's.
    chosen: usize,
}

impl Report {
    /// The report of `rounds`, which must not be empty.
    pub fn new(plan: Plan, preload: Option<Preload>, rounds: Vec<Round>) -> Self {
        assert!(!rounds.is_empty(), "a bench runs at least one round");
        let chosen = median(&rounds);
        Self {
            plan,
            preload,
            rounds,
            chosen,
        }
    }

    fn round(&self) -> &Round {
        &self.rounds[self.chosen]
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
        if self.rounds.len() > 1 {
            text.push_str(&self.rounds_text());
        }
        let round = self.round();
        text.push_str(&format!("\ngateway\n{}", round.gateway.line()));
        if let Some(direct) = &round.direct {
            text.push_str(&format!("\ndirect (librdkafka)\n{}", direct.line()));
        }
        if let Some(ratio) = round.ratio() {
            text.push_str(&format!("\nratio gateway/direct: {ratio:.2}"));
        }
        if let Some(server) = round.server {
            text.push_str(&format!(
                "\nserver      : {:.2} CPU cores ({:.1} CPU s), RSS peak {:.1} MiB, final {:.1} MiB",
                server.cores, server.cpu_seconds, server.peak_rss_mib, server.final_rss_mib
            ));
        }
        text
    }

    /// A line per round, then which one the figures below are.
    fn rounds_text(&self) -> String {
        let mut text = String::new();
        for (i, round) in self.rounds.iter().enumerate() {
            text.push_str(&format!(
                "\nround {:<6}: gateway {:.0} records/s",
                i + 1,
                round.gateway.records_per_s
            ));
            if let Some(direct) = &round.direct {
                text.push_str(&format!(", direct {:.0} records/s", direct.records_per_s));
            }
            if let Some(ratio) = round.ratio() {
                text.push_str(&format!(", ratio {ratio:.2}"));
            }
        }
        let by = if self.round().direct.is_some() {
            "ratio"
        } else {
            "throughput"
        };
        text.push_str(&format!(
            "\nmedian      : round {} of {} by {by}; its figures:",
            self.chosen + 1,
            self.rounds.len()
        ));
        text
    }

    fn json(&self) -> Value {
        let (plan, round) = (&self.plan, self.round());
        let gateway = &round.gateway;
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
            "server_cpu": round.server.map(|s| json!({"cores": s.cores, "seconds": s.cpu_seconds})),
            "server_rss_mib": round.server.map(|s| json!({"peak": s.peak_rss_mib, "final": s.final_rss_mib})),
            "rounds": self.rounds.iter().map(Round::json).collect::<Vec<_>>(),
            "median_round": self.chosen + 1,
        });
        if let (Some(direct), Value::Object(map)) = (&round.direct, &mut object) {
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
            map.insert("ratio".into(), json!(round.ratio()));
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
            crate::plan::STREAM_WINDOW
        ),
        BenchWorkload::Subscribe => "one Subscribe stream from earliest".to_owned(),
        BenchWorkload::E2e => format!("one stream each way at {:.0} records/s", plan.rate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(records_per_s: f64) -> Figures {
        Figures {
            records: 1,
            elapsed: Duration::from_secs(1),
            window: (Duration::ZERO, Duration::from_secs(1)),
            window_records: 1,
            records_per_s,
            mb_per_s: 0.0,
            latency: None,
            errors: BTreeMap::new(),
        }
    }

    fn round(gateway: f64, direct: Option<f64>) -> Round {
        Round {
            gateway: figures(gateway),
            direct: direct.map(figures),
            server: None,
        }
    }

    #[test]
    fn the_median_round_is_ranked_by_ratio_not_by_throughput() {
        // Ratios 0.5, 0.9, 0.6: the median is the third round, though its gateway is slowest.
        let rounds = [
            round(100.0, Some(200.0)),
            round(90.0, Some(100.0)),
            round(60.0, Some(100.0)),
        ];
        assert_eq!(median(&rounds), 2);
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_round() {
        // Ratios 0.5, 0.9, 0.6, 0.8: the middle two are 0.6 and 0.8; 0.6 is reported.
        let rounds = [
            round(50.0, Some(100.0)),
            round(90.0, Some(100.0)),
            round(60.0, Some(100.0)),
            round(80.0, Some(100.0)),
        ];
        assert_eq!(median(&rounds), 2);
        // A direct side that read nothing ranks lowest rather than poisoning the order.
        let rounds = [round(50.0, Some(0.0)), round(90.0, Some(100.0))];
        assert_eq!(median(&rounds), 0);
    }

    #[test]
    fn without_a_direct_side_rounds_are_ranked_by_throughput() {
        let rounds = [round(300.0, None), round(100.0, None), round(200.0, None)];
        assert_eq!(median(&rounds), 2);
        assert_eq!(median(&rounds[..1]), 0);
    }
}
