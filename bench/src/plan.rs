//! What one bench run does, checked once from the command line, and the pieces every
//! workload shares: the record value, which errors stop the run, waiting for tasks.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::Failure;
use crate::args::{BenchArgs, BenchWorkload};

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
            quiet: args.json,
        })
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
