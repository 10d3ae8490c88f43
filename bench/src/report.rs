//! The figures of a run and how they are printed: a few readable lines, or one JSON object.
//!
//! The window: the figures count what was done after the warm-up (`--warmup`, 1 s), up to
//! the end of the run; for e2e, the records *sent* after the warm-up. A run shorter than
//! twice the warm-up is measured whole, and the report says so; so is the other side of a
//! comparison (`--direct` or `--compare-protocol`) then, so that the ratio compares like
//! with like.
//!
//! With `--rounds N` the figures are those of the median round (by ratio, or by throughput
//! without a second side), so that the ratio and the figures it is made of stay one run's;
//! every round's throughput and ratio are listed too.
//!
//! A filtered subscribe run (`--filter`, `--compare-filter`) counts records *read* as its
//! records (so records/s is records read per second, and CPU per record is per record
//! read), and adds, over the whole run, the records and bytes received
//! ([`Delivered`]) and the ratio of the two sides' bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Failure;
use crate::args::{Protocol, Values};
use crate::plan::{Baseline, Plan, protocol_name};
use crate::server::Usage;
use crate::stats::{Delivered, Measured, Percentiles};

/// The figures of one run, through the gateway or direct.
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
    /// A filtered run: the records and bytes received over the whole run (its `records`
    /// are the records read).
    pub delivered: Option<Delivered>,
}

impl Figures {
    /// Whether `measured` is long enough to leave its warm-up out.
    pub fn can_window(measured: &Measured) -> bool {
        measured.elapsed >= measured.warmup * 2 && measured.counts.window.records > 0
    }

    /// The figures of `measured`, for values of `size` bytes: over the window when
    /// `windowed`, else over the whole run; with what it received when `scan` (a filtered
    /// run).
    pub fn new(measured: &Measured, size: usize, windowed: bool, scan: bool) -> Self {
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
            delivered: scan.then_some(counts.delivered),
        }
    }

    /// Bytes received per record read, over the whole run (a filtered run).
    fn bytes_per_record(&self) -> Option<f64> {
        let delivered = self.delivered?;
        (self.records > 0).then(|| delivered.bytes as f64 / self.records as f64)
    }

    /// What a filtered run received: a line of the report.
    fn received_line(&self) -> Option<String> {
        let delivered = self.delivered?;
        let share = if self.records > 0 {
            format!(
                " ({:.2} % of those read)",
                delivered.records as f64 * 100.0 / self.records as f64
            )
        } else {
            String::new()
        };
        Some(format!(
            "\n  received    : {} records{share}, {} bytes, {:.1} bytes per record read",
            delivered.records,
            delivered.bytes,
            self.bytes_per_record().unwrap_or(0.0)
        ))
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
        let (per_s, read) = match self.delivered {
            Some(_) => ("records read/s", " read"),
            None => ("records/s", ""),
        };
        format!(
            "  throughput  : {:.0} {per_s}, {:.2} MB/s{latency}\n  records     : {}{read} in {:.2} s; window {}: {} records{}\n  errors      : {errors}",
            self.records_per_s,
            self.mb_per_s,
            self.records,
            self.elapsed.as_secs_f64(),
            self.window_text(),
            self.window_records,
            self.received_line().unwrap_or_default(),
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

/// What the server used during a run through the gateway, with the records it served.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// The usage.
    pub usage: Usage,
    /// Records done in the whole run: what the CPU time was spent on.
    pub records: u64,
    /// What a record is in the figures: `record`, or `record read` for a filtered run.
    pub unit: &'static str,
}

impl Served {
    /// CPU microseconds per record.
    fn us_per_record(self) -> Option<f64> {
        (self.records > 0).then(|| self.usage.cpu_seconds * 1e6 / self.records as f64)
    }

    fn line(self) -> String {
        let Usage {
            cores,
            cpu_seconds,
            peak_rss_mib,
            final_rss_mib,
        } = self.usage;
        let per_record = self
            .us_per_record()
            .map_or_else(String::new, |us| format!(", {us:.2} µs per {}", self.unit));
        format!(
            "{cores:.2} CPU cores ({cpu_seconds:.1} CPU s{per_record}), RSS peak {peak_rss_mib:.1} MiB, final {final_rss_mib:.1} MiB"
        )
    }

    fn cpu_json(self) -> Value {
        json!({
            "cores": self.usage.cores,
            "seconds": self.usage.cpu_seconds,
            "us_per_record": self.us_per_record(),
        })
    }

    fn rss_json(self) -> Value {
        json!({"peak": self.usage.peak_rss_mib, "final": self.usage.final_rss_mib})
    }
}

/// One run of a round: its figures and, through the gateway, what the server used.
#[derive(Debug)]
pub struct Side {
    /// The figures.
    pub figures: Figures,
    /// The server's usage during the run, when it can be read (never for --direct).
    pub server: Option<Served>,
}

/// A run as measured, before a round turns it into figures.
pub struct Run {
    /// Its counts.
    pub measured: Measured,
    /// What the server used meanwhile.
    pub server: Option<Usage>,
    /// A filtered read through the gateway: its records are records read, and it counted
    /// what it received.
    pub scanned: bool,
}

/// One round: the run through the gateway over `--protocol`, then its baseline — the run
/// straight on Kafka (`--direct`) or over the compared protocol (`--compare-protocol`).
#[derive(Debug)]
pub struct Round {
    /// Through streamgate over `--protocol`.
    pub gateway: Side,
    /// The second run, when there is one: the ratio's denominator.
    pub baseline: Option<Side>,
}

impl Round {
    /// The figures of a round, for values of `size` bytes.
    pub fn new(gateway: Run, baseline: Option<Run>, size: usize) -> Self {
        // Both sides over the same kind of window, or the ratio would compare unlike figures.
        let windowed = Figures::can_window(&gateway.measured)
            && baseline
                .as_ref()
                .is_none_or(|b| Figures::can_window(&b.measured));
        let side = |run: Run| {
            let figures = Figures::new(&run.measured, size, windowed, run.scanned);
            let records = figures.records;
            let unit = if run.scanned { "record read" } else { "record" };
            Side {
                figures,
                server: run.server.map(|usage| Served {
                    usage,
                    records,
                    unit,
                }),
            }
        };
        Self {
            gateway: side(gateway),
            baseline: baseline.map(side),
        }
    }

    /// gateway / baseline records per second.
    fn ratio(&self) -> Option<f64> {
        let baseline = &self.baseline.as_ref()?.figures;
        (baseline.records_per_s > 0.0)
            .then(|| self.gateway.figures.records_per_s / baseline.records_per_s)
    }

    /// gateway / baseline bytes received (filtered runs).
    fn bytes_ratio(&self) -> Option<f64> {
        let gateway = self.gateway.figures.delivered?;
        let baseline = self.baseline.as_ref()?.figures.delivered?;
        (baseline.bytes > 0).then(|| gateway.bytes as f64 / baseline.bytes as f64)
    }

    /// What rounds are ranked by: the ratio, or without a baseline the throughput.
    fn rank(&self) -> f64 {
        match self.baseline {
            Some(_) => self.ratio().unwrap_or(0.0),
            None => self.gateway.figures.records_per_s,
        }
    }

    /// The round's line of the JSON report, the baseline's figures under its key.
    fn json(&self, kind: Option<Baseline>) -> Value {
        // Without a second side the key is the one rounds always had (`direct_…`, null).
        let key = kind.map_or("direct", Baseline::key);
        let cpu = |side: &Side| side.server.map(|s| s.usage.cpu_seconds);
        let mut round = json!({
            "records_per_s": self.gateway.figures.records_per_s,
            "ratio": self.ratio(),
            "server_cpu_seconds": cpu(&self.gateway),
        });
        let baseline = self.baseline.as_ref();
        round[format!("{key}_records_per_s")] = json!(baseline.map(|b| b.figures.records_per_s));
        if kind.is_some_and(Baseline::is_gateway) {
            round[format!("{key}_server_cpu_seconds")] = json!(baseline.and_then(cpu));
        }
        if let Some(delivered) = self.gateway.figures.delivered {
            round["bytes_received"] = json!(delivered.bytes);
            let theirs = baseline.and_then(|b| b.figures.delivered);
            round[format!("{key}_bytes_received")] = json!(theirs.map(|d| d.bytes));
            round["bytes_ratio"] = json!(self.bytes_ratio());
        }
        round
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
        let values = match plan.values {
            Values::Raw => format!("records of {} bytes", plan.size),
            Values::PageEvents => format!("PageEvent JSON records (about {} bytes)", plan.size),
        };
        let mut text = format!(
            "bench {}{}: {} {values}, topic {}, {}",
            plan.name(),
            self.over(),
            plan.records,
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
        let (heading, baseline_heading) = self.headings();
        text.push_str(&format!("\n{heading}\n{}", round.gateway.figures.line()));
        if let (Some(baseline), Some(name)) = (&round.baseline, &baseline_heading) {
            text.push_str(&format!("\n{name}\n{}", baseline.figures.line()));
        }
        let (first, second) = plan.side_names();
        if let (Some(ratio), Some(second)) = (round.ratio(), second) {
            match round.bytes_ratio() {
                Some(bytes) => text.push_str(&format!(
                    "\nratio {first}/{second}: {ratio:.2} (records read/s); bytes received {bytes:.4}"
                )),
                None => text.push_str(&format!("\nratio {first}/{second}: {ratio:.2}")),
            }
        }
        // With two runs through the gateway, each usage line says whose it is.
        let comparing = plan.baseline.is_some_and(Baseline::is_gateway);
        if let Some(server) = round.gateway.server {
            let label = if comparing {
                format!("server, {first}")
            } else {
                "server".to_owned()
            };
            text.push_str(&format!("\n{label:<12}: {}", server.line()));
        }
        if let (Some(server), Some(second)) =
            (round.baseline.as_ref().and_then(|b| b.server), second)
        {
            text.push_str(&format!(
                "\n{:<12}: {}",
                format!("server, {second}"),
                server.line()
            ));
        }
        text
    }

    /// ` over connect-json`, ` over connect-json against grpc`, or nothing for plain gRPC;
    /// then ` through a filter` for a filtered run.
    fn over(&self) -> String {
        let plan = &self.plan;
        let through = match (plan.scan, plan.baseline) {
            (true, Some(Baseline::Filter)) => " through two filters",
            (true, _) => " through a filter",
            (false, _) => "",
        };
        let over = match plan.baseline {
            Some(Baseline::Protocol(compared)) => format!(
                " over {} against {}",
                protocol_name(plan.protocol),
                protocol_name(compared)
            ),
            _ if plan.protocol == Protocol::Grpc => String::new(),
            _ => format!(" over {}", protocol_name(plan.protocol)),
        };
        format!("{over}{through}")
    }

    /// The headings of the two runs' figures.
    fn headings(&self) -> (String, Option<String>) {
        let plan = &self.plan;
        let baseline = plan.baseline.map(|baseline| match baseline {
            Baseline::Direct => "direct (librdkafka)".to_owned(),
            Baseline::Protocol(compared) if plan.scan => {
                format!("{}, filter {}", plan.heading(compared), plan.filter)
            }
            Baseline::Protocol(compared) => plan.heading(compared),
            Baseline::Filter => plan.filter_heading(&plan.compare_filter),
        });
        let heading = if plan.scan {
            plan.filter_heading(&plan.filter)
        } else {
            plan.heading(plan.protocol)
        };
        (heading, baseline)
    }

    /// A line per round, then which one the figures below are.
    fn rounds_text(&self) -> String {
        let (first, second) = self.plan.side_names();
        let mut text = String::new();
        for (i, round) in self.rounds.iter().enumerate() {
            text.push_str(&format!(
                "\nround {:<6}: {first} {:.0} records/s",
                i + 1,
                round.gateway.figures.records_per_s
            ));
            if let (Some(baseline), Some(second)) = (&round.baseline, second) {
                text.push_str(&format!(
                    ", {second} {:.0} records/s",
                    baseline.figures.records_per_s
                ));
            }
            if let Some(ratio) = round.ratio() {
                text.push_str(&format!(", ratio {ratio:.2}"));
            }
            if let Some(bytes) = round.bytes_ratio() {
                text.push_str(&format!(", bytes received {bytes:.4}"));
            }
        }
        let by = if self.round().baseline.is_some() {
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
        let gateway = &round.gateway.figures;
        let server = round.gateway.server;
        let key = plan.baseline.map_or("direct", Baseline::key);
        let mut object = json!({
            "workload": plan.name(),
            "protocol": protocol_name(plan.protocol),
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
            "server_cpu": server.map(Served::cpu_json),
            "server_rss_mib": server.map(Served::rss_json),
            "rounds": self.rounds.iter().map(|r| r.json(plan.baseline)).collect::<Vec<_>>(),
            "median_round": self.chosen + 1,
        });
        if plan.scan
            && let Value::Object(map) = &mut object
        {
            map.insert("values".into(), json!(values_name(plan.values)));
            map.insert("filter".into(), json!(plan.filter));
            add_delivered(map, "", gateway);
        }
        if let (Some(baseline), Value::Object(map)) = (&round.baseline, &mut object) {
            let figures = &baseline.figures;
            let mut add = |name: &str, value: Value| map.insert(format!("{key}_{name}"), value);
            add("records", json!(figures.records));
            add("elapsed_s", json!(figures.elapsed.as_secs_f64()));
            add("window", figures.window_json());
            add("records_per_s", json!(figures.records_per_s));
            add("mb_per_s", json!(figures.mb_per_s));
            add("latency_ms", figures.latency_json());
            add("errors", json!(figures.errors));
            if let Some(Baseline::Protocol(compared)) = plan.baseline {
                add("protocol", json!(protocol_name(compared)));
            }
            if let Some(Baseline::Filter) = plan.baseline {
                add("filter", json!(plan.compare_filter));
            }
            if plan.baseline.is_some_and(Baseline::is_gateway) {
                add("server_cpu", json!(baseline.server.map(Served::cpu_json)));
                add(
                    "server_rss_mib",
                    json!(baseline.server.map(Served::rss_json)),
                );
            }
            if plan.scan {
                add_delivered(map, &format!("{key}_"), figures);
                map.insert("bytes_ratio".into(), json!(round.bytes_ratio()));
            }
            map.insert("ratio".into(), json!(round.ratio()));
        }
        object
    }
}

/// A filtered side's `records_received`, `bytes_received` and `bytes_per_record_read`,
/// their names after `prefix` (`""` or `compared_`).
fn add_delivered(map: &mut serde_json::Map<String, Value>, prefix: &str, figures: &Figures) {
    // Not for a side that does not filter (--direct).
    let Some(delivered) = figures.delivered else {
        return;
    };
    let mut add = |name: &str, value: Value| map.insert(format!("{prefix}{name}"), value);
    add("records_received", json!(delivered.records));
    add("bytes_received", json!(delivered.bytes));
    add("bytes_per_record_read", json!(figures.bytes_per_record()));
}

/// A `--values` kind as typed.
fn values_name(values: Values) -> &'static str {
    match values {
        Values::Raw => "raw",
        Values::PageEvents => "page-events",
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
        BenchWorkload::Subscribe if plan.scan => {
            "one Subscribe stream from earliest to every partition's end marker".to_owned()
        }
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
            delivered: None,
        }
    }

    fn side(records_per_s: f64) -> Side {
        Side {
            figures: figures(records_per_s),
            server: None,
        }
    }

    fn round(gateway: f64, baseline: Option<f64>) -> Round {
        Round {
            gateway: side(gateway),
            baseline: baseline.map(side),
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

    fn filtered(records_per_s: f64, read: u64, received: u64, bytes: u64) -> Side {
        Side {
            figures: Figures {
                records: read,
                delivered: Some(Delivered {
                    records: received,
                    bytes,
                }),
                ..figures(records_per_s)
            },
            server: None,
        }
    }

    #[test]
    fn a_filtered_round_reports_what_was_received_and_the_bytes_ratio() {
        let filtered_round = Round {
            gateway: filtered(800.0, 1000, 10, 1_300),
            baseline: Some(filtered(1000.0, 1000, 1000, 130_000)),
        };
        assert_eq!(filtered_round.ratio(), Some(0.8));
        assert_eq!(filtered_round.bytes_ratio(), Some(0.01));
        let side = &filtered_round.gateway.figures;
        assert_eq!(side.bytes_per_record(), Some(1.3));
        let line = side.line();
        assert!(line.contains("800 records read/s"), "{line}");
        assert!(
            line.contains("received    : 10 records (1.00 % of those read), 1300 bytes, 1.3 bytes per record read"),
            "{line}"
        );
        let json = filtered_round.json(Some(Baseline::Filter));
        assert_eq!(json["bytes_ratio"], 0.01);
        assert_eq!(json["bytes_received"], 1_300);
        assert_eq!(json["compared_bytes_received"], 130_000);
        assert_eq!(json["compared_records_per_s"], 1000.0);
        // Both sides ran through the gateway: each has its server CPU (none measured here).
        assert!(json["compared_server_cpu_seconds"].is_null());
        assert!(json.get("compared_server_cpu_seconds").is_some(), "{json}");

        // Unfiltered runs say nothing of bytes.
        let plain = round(100.0, Some(200.0));
        assert_eq!(plain.bytes_ratio(), None);
        let json = plain.json(Some(Baseline::Direct));
        assert!(json.get("bytes_ratio").is_none(), "{json}");
        assert!(!plain.gateway.figures.line().contains("received"));
    }

    #[test]
    fn without_a_direct_side_rounds_are_ranked_by_throughput() {
        let rounds = [round(300.0, None), round(100.0, None), round(200.0, None)];
        assert_eq!(median(&rounds), 2);
        assert_eq!(median(&rounds[..1]), 0);
    }
}
