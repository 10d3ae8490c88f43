//! What one bench run does, checked once from the command line, and the pieces every
//! workload shares: the record value, which errors stop the run, waiting for tasks.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::Failure;
use crate::args::{BenchArgs, BenchWorkload, Protocol, Values};

/// Records a PublishStream keeps unacknowledged (the gateway and the direct producer alike).
pub const STREAM_WINDOW: u64 = 1024;

/// The run, from the flags.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workload.
    pub workload: BenchWorkload,
    /// Topic.
    pub topic: String,
    /// Records to publish or read.
    pub records: u64,
    /// Calls or streams in flight (1 for subscribe and e2e).
    pub concurrency: u64,
    /// Value size in bytes.
    pub size: usize,
    /// e2e: records per second.
    pub rate: f64,
    /// Time left out of the figures at the start.
    pub warmup: Duration,
    /// Rounds of each side (`--rounds`).
    pub rounds: u32,
    /// The protocol the workload speaks (`--protocol`).
    pub protocol: Protocol,
    /// What each round runs second, the ratio's denominator: Kafka direct, another
    /// protocol, another filter, or nothing.
    pub baseline: Option<Baseline>,
    /// What the preloaded records hold (`--values`).
    pub values: Values,
    /// Subscribe through a filter (`--filter` or `--compare-filter` given): read to the
    /// end markers and count records read and received ([`crate::scan`]).
    pub scan: bool,
    /// The filter of the first side (`--filter`; empty: none).
    pub filter: String,
    /// The filter of the second side with `--compare-filter` (empty: none).
    pub compare_filter: String,
    /// Partitions of the topic: `--partitions`, then what the topic has.
    pub partitions: i32,
    /// No progress line.
    pub quiet: bool,
}

impl Plan {
    /// The plan for `args`; a flag that does not fit the workload is a usage error.
    pub fn new(args: &BenchArgs) -> Result<Self, Failure> {
        let concurrency = match (args.workload, args.concurrency) {
            (BenchWorkload::Publish, c) => c.unwrap_or(64),
            (BenchWorkload::PublishStream, c) => c.unwrap_or(4),
            // Subscribe cannot pick partitions, so parallel streams would read the same records.
            (_, None | Some(1)) => 1,
            (workload, Some(_)) => {
                return Err(Failure::usage(format!(
                    "--concurrency does not apply to bench {}: it reads over one Subscribe stream",
                    name(workload)
                )));
            }
        };
        if args.workload == BenchWorkload::E2e && args.size < 16 {
            return Err(Failure::usage(
                "bench e2e needs --size 16 or more: each value carries its send time",
            ));
        }
        let protocols = [
            ("--protocol", Some(args.protocol)),
            ("--compare-protocol", args.compare_protocol),
        ];
        for (flag, protocol) in protocols {
            if let Some(protocol) = protocol
                && !carries(protocol, args.workload)
            {
                return Err(Failure::usage(format!(
                    "bench {} does not run over {flag} {}: {}",
                    name(args.workload),
                    protocol_name(protocol),
                    carried_by(protocol)
                )));
            }
        }
        let baseline = match (&args.direct, args.compare_protocol, &args.compare_filter) {
            (Some(_), None, None) => Some(Baseline::Direct),
            (None, Some(protocol), None) => Some(Baseline::Protocol(protocol)),
            (None, None, Some(_)) => Some(Baseline::Filter),
            (None, None, None) => None,
            _ => {
                return Err(Failure::usage(
                    "--direct, --compare-protocol and --compare-filter are three kinds of second side: pick one",
                ));
            }
        };
        let filtering = [
            ("--filter", args.filter.is_some()),
            ("--compare-filter", args.compare_filter.is_some()),
            ("--values", args.values.is_some()),
        ];
        for (flag, given) in filtering {
            if given && args.workload != BenchWorkload::Subscribe {
                return Err(Failure::usage(format!(
                    "{flag} applies to bench subscribe only, not to bench {}",
                    name(args.workload)
                )));
            }
        }
        let scan = args.filter.is_some() || args.compare_filter.is_some();
        let values = args.values.unwrap_or(if scan {
            Values::PageEvents
        } else {
            Values::Raw
        });
        let size = match values {
            Values::Raw => usize::try_from(args.size).unwrap_or(usize::MAX),
            Values::PageEvents => crate::values::page_event_size(),
        };
        if args.rounds == 0 {
            return Err(Failure::usage("--rounds must be 1 or more"));
        }
        if !(args.rate.is_finite() && args.rate > 0.0) {
            return Err(Failure::usage(
                "--rate must be a positive number per second",
            ));
        }
        Ok(Self {
            workload: args.workload,
            topic: args.topic.clone(),
            records: args.records,
            concurrency,
            size,
            rate: args.rate,
            warmup: args.warmup,
            rounds: args.rounds,
            protocol: args.protocol,
            baseline,
            values,
            scan,
            filter: args.filter.clone().unwrap_or_default(),
            compare_filter: args.compare_filter.clone().unwrap_or_default(),
            partitions: args.partitions,
            quiet: args.json,
        })
    }

    /// The short names of a round's two sides, as the round lines and the ratio give them:
    /// `gateway` and `direct`, the two protocols compared, or `filtered` and `unfiltered`
    /// (`filtered` and `compared` for two filters).
    pub fn side_names(&self) -> (&'static str, Option<&'static str>) {
        match self.baseline {
            None => ("gateway", None),
            Some(Baseline::Direct) => ("gateway", Some("direct")),
            Some(Baseline::Protocol(compared)) => {
                (protocol_name(self.protocol), Some(protocol_name(compared)))
            }
            Some(Baseline::Filter) => {
                match (self.filter.is_empty(), self.compare_filter.is_empty()) {
                    (false, true) => ("filtered", Some("unfiltered")),
                    (true, false) => ("unfiltered", Some("filtered")),
                    (false, false) => ("filtered", Some("compared")),
                    (true, true) => ("unfiltered", Some("compared")),
                }
            }
        }
    }

    /// The heading of the run through the gateway over `protocol`: plain `gateway` for
    /// gRPC (the default, as before `--protocol` existed), unless two protocols are
    /// compared.
    pub fn heading(&self, protocol: Protocol) -> String {
        let comparing = matches!(self.baseline, Some(Baseline::Protocol(_)));
        if protocol == Protocol::Grpc && !comparing {
            "gateway".to_owned()
        } else {
            format!("gateway ({})", protocol_name(protocol))
        }
    }

    /// The heading of a filtered run through `filter`: [`Plan::heading`] and the filter.
    pub fn filter_heading(&self, filter: &str) -> String {
        let gateway = self.heading(self.protocol);
        if filter.is_empty() {
            format!("{gateway}, no filter")
        } else {
            format!("{gateway}, filter {filter}")
        }
    }

    /// A value of `size` bytes: printable filler, so that tools reading the topic show text.
    pub fn value(&self) -> Bytes {
        Bytes::from(vec![b'x'; self.size])
    }

    /// The workload's name as typed.
    pub fn name(&self) -> &'static str {
        name(self.workload)
    }
}

/// A workload's name as typed on the command line.
pub fn name(workload: BenchWorkload) -> &'static str {
    match workload {
        BenchWorkload::Publish => "publish",
        BenchWorkload::PublishStream => "publish-stream",
        BenchWorkload::Subscribe => "subscribe",
        BenchWorkload::E2e => "e2e",
    }
}

/// What each round runs after the workload over `--protocol`: the ratio's denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// `--direct`: the same workload straight on Kafka.
    Direct,
    /// `--compare-protocol`: the same workload through the gateway over another protocol.
    Protocol(Protocol),
    /// `--compare-filter`: the same subscribe run through the gateway with another filter
    /// ([`Plan::compare_filter`]).
    Filter,
}

impl Baseline {
    /// The prefix of the second side's keys in the JSON report.
    pub fn key(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Protocol(_) | Self::Filter => "compared",
        }
    }

    /// Whether the second side runs through the gateway too (its server usage is measured).
    pub fn is_gateway(self) -> bool {
        !matches!(self, Self::Direct)
    }
}

/// A protocol's name as typed.
pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => "grpc",
        Protocol::ConnectProto => "connect-proto",
        Protocol::ConnectJson => "connect-json",
        Protocol::Sse => "sse",
    }
}

/// Whether `protocol` can carry `workload`. PublishStream and e2e stream both ways; the
/// bench speaks Connect unary and server streams only, and SSE only reads.
pub fn carries(protocol: Protocol, workload: BenchWorkload) -> bool {
    use BenchWorkload::{Publish, Subscribe};
    match protocol {
        Protocol::Grpc => true,
        Protocol::ConnectProto | Protocol::ConnectJson => matches!(workload, Publish | Subscribe),
        Protocol::Sse => workload == Subscribe,
    }
}

/// What a protocol carries, for the usage error of a workload it does not.
fn carried_by(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => "grpc carries every workload",
        Protocol::ConnectProto | Protocol::ConnectJson => {
            "over Connect the bench runs publish (unary calls) and subscribe (a server stream); publish-stream and e2e stream both ways and run over grpc only"
        }
        Protocol::Sse => {
            "Server-Sent Events only read: the bench runs subscribe over sse, and everything else over grpc (publish also over connect-proto and connect-json)"
        }
    }
}

/// Whether a failure with this code is counted and the run goes on. The load itself can
/// cause these (a full buffer, a slow broker); any other code is a refusal that every
/// further call would get too (PERMISSION_DENIED, NOT_FOUND, ...), so it stops the run.
pub fn is_transient(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted
    )
}

/// Waits for every task; the first failure aborts the others and is returned.
pub async fn join_all(mut tasks: JoinSet<Result<(), Failure>>) -> Result<(), Failure> {
    while let Some(joined) = tasks.join_next().await {
        let result =
            joined.unwrap_or_else(|e| Err(Failure::refused(format!("a bench task failed: {e}"))));
        if let Err(failure) = result {
            tasks.abort_all();
            return Err(failure);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::Cli;

    fn plan(args: &[&str]) -> Result<Plan, Failure> {
        let all = [&["streamgate-bench"], args].concat();
        let cli = Cli::try_parse_from(all).expect("parses");
        Plan::new(&cli.bench)
    }

    #[test]
    fn a_filter_reads_to_the_end_markers_over_page_events() {
        let p = plan(&["subscribe", "--filter", "value.duration > 100"]).expect("plan");
        assert!(p.scan);
        assert_eq!(p.values, Values::PageEvents);
        assert_eq!(p.size, crate::values::page_event_size());
        assert_eq!(
            (p.filter.as_str(), p.baseline),
            ("value.duration > 100", None)
        );

        // --values raw keeps --size: a filter on keys or offsets needs no JSON.
        let raw = plan(&[
            "subscribe",
            "--filter",
            "offset > 5",
            "--values",
            "raw",
            "-s",
            "64",
        ]);
        let raw = raw.expect("plan");
        assert_eq!((raw.values, raw.size, raw.scan), (Values::Raw, 64, true));

        // Without a filter, subscribe reads --records records of raw values, as before.
        let plain = plan(&["subscribe"]).expect("plan");
        assert_eq!(
            (plain.values, plain.scan, plain.size),
            (Values::Raw, false, 100)
        );
    }

    #[test]
    fn compare_filter_is_a_second_side_through_the_gateway() {
        let p = plan(&[
            "subscribe",
            "--filter",
            "value.duration < 90",
            "--compare-filter",
            "",
        ]);
        let p = p.expect("plan");
        assert_eq!(p.baseline, Some(Baseline::Filter));
        assert!(p.baseline.is_some_and(Baseline::is_gateway));
        assert_eq!(p.side_names(), ("filtered", Some("unfiltered")));
        assert_eq!(p.compare_filter, "");
        assert_eq!(
            p.filter_heading(&p.filter),
            "gateway, filter value.duration < 90"
        );
        assert_eq!(p.filter_heading(""), "gateway, no filter");

        // --compare-filter alone: the first side unfiltered, the records still PageEvents.
        let p = plan(&["subscribe", "--compare-filter", "key == 'P1'"]).expect("plan");
        assert_eq!(p.side_names(), ("unfiltered", Some("filtered")));
        assert!(p.scan && p.values == Values::PageEvents);
        let p = plan(&["subscribe", "--filter", "a", "--compare-filter", "b"]).expect("plan");
        assert_eq!(p.side_names(), ("filtered", Some("compared")));
    }

    #[test]
    fn filters_apply_to_subscribe_only_and_take_one_second_side() {
        for workload in ["publish", "publish-stream", "e2e"] {
            for flags in [
                ["--filter", "x"],
                ["--compare-filter", ""],
                ["--values", "raw"],
            ] {
                let refused = plan(&[&[workload][..], &flags].concat());
                assert!(refused.is_err(), "{workload} {flags:?}");
            }
        }
        let all = [
            "streamgate-bench",
            "subscribe",
            "--compare-filter",
            "",
            "--direct",
            "h:1",
        ];
        assert!(Cli::try_parse_from(all).is_err(), "two second sides");
        let all = [
            "streamgate-bench",
            "subscribe",
            "--compare-filter",
            "",
            "--compare-protocol",
            "grpc",
        ];
        assert!(Cli::try_parse_from(all).is_err(), "two second sides");
        // A filter and another protocol: both sides filtered, over each protocol.
        let p = plan(&[
            "subscribe",
            "--filter",
            "x",
            "--protocol",
            "sse",
            "--compare-protocol",
            "grpc",
        ]);
        assert_eq!(
            p.expect("plan").baseline,
            Some(Baseline::Protocol(Protocol::Grpc))
        );
    }
}
