//! What one bench run does, checked once from the command line, and the pieces every
//! workload shares: the record value, which errors stop the run, waiting for tasks.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::Failure;
use crate::args::{BenchArgs, BenchWorkload, Protocol};

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
    /// protocol, or nothing.
    pub baseline: Option<Baseline>,
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
        let baseline = match (&args.direct, args.compare_protocol) {
            (Some(_), Some(_)) => {
                return Err(Failure::usage(
                    "--direct and --compare-protocol are two kinds of second side: pick one",
                ));
            }
            (Some(_), None) => Some(Baseline::Direct),
            (None, Some(protocol)) => Some(Baseline::Protocol(protocol)),
            (None, None) => None,
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
            size: usize::try_from(args.size).unwrap_or(usize::MAX),
            rate: args.rate,
            warmup: args.warmup,
            rounds: args.rounds,
            protocol: args.protocol,
            baseline,
            quiet: args.json,
        })
    }

    /// The short names of a round's two sides, as the round lines and the ratio give them:
    /// `gateway` and `direct`, or the two protocols compared.
    pub fn side_names(&self) -> (&'static str, Option<&'static str>) {
        match self.baseline {
            None => ("gateway", None),
            Some(Baseline::Direct) => ("gateway", Some("direct")),
            Some(Baseline::Protocol(compared)) => {
                (protocol_name(self.protocol), Some(protocol_name(compared)))
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
}

impl Baseline {
    /// The prefix of the second side's keys in the JSON report.
    pub fn key(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Protocol(_) => "compared",
        }
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
