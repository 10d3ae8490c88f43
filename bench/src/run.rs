//! What a bench does: makes sure the topic exists (creating it with `--direct`), publishes
//! what a subscribe run needs to read, then runs the rounds — the workload through the
//! gateway, then with `--direct` straight on Kafka — and prints the report.

use std::time::{Duration, Instant};

use streamgate_cli::interrupt::interruptible;

use crate::args::{BenchArgs, BenchWorkload};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::{Preload, Report, Round};
use crate::stats::{Measured, Tally};
use crate::{Client, Failure, direct, e2e, gateway, read, server};

/// How long a topic created with `--direct` may take to show in the server's metadata.
const TOPIC_VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// Runs the bench; Ctrl-C stops it with exit code 130.
/// `server` reads the server's own CPU and memory (its `/metrics`) when `--server-pid`
/// names no local process.
pub async fn run(client: Client, server: server::Probe, args: BenchArgs) -> Result<(), Failure> {
    interruptible(bench(client, server, args)).await?
}

async fn bench(client: Client, probe: server::Probe, args: BenchArgs) -> Result<(), Failure> {
    let plan = Plan::new(&args)?;
    let held = ensure_topic(&client, &plan, &args).await?;
    let preload = match plan.workload {
        BenchWorkload::Subscribe if held < plan.records => {
            Some(preload(&client, &plan, plan.records - held).await?)
        }
        _ => None,
    };
    let probe = args.server_pid.map_or(probe, server::Probe::Pid);
    let direct = direct_side(&args);
    let sides = Sides {
        client: &client,
        plan: &plan,
        direct: direct.as_ref(),
    };
    let mut rounds = Vec::new();
    for number in 1..=plan.rounds {
        let round = sides.round(number, &probe, args.server_pid.is_some());
        rounds.push(round.await?);
    }
    Report::new(plan, preload, rounds).print(args.json)
}

/// What a round runs: the workload through the gateway, then, with `--direct`, on Kafka.
struct Sides<'a> {
    client: &'a Client,
    plan: &'a Plan,
    direct: Option<&'a direct::Direct>,
}

impl Sides<'_> {
    /// Round `number`: the gateway run with the server's usage during it, then the direct run.
    async fn round(
        &self,
        number: u32,
        probe: &server::Probe,
        must_watch: bool,
    ) -> Result<Round, Failure> {
        let (client, p) = (self.client, self.plan);
        // A server that does not report (an older one, or a token without `metrics`) is
        // measured without its usage, unless --server-pid asked for it.
        let watch = match server::Watch::start(probe.clone()).await {
            Ok(watch) => Some(watch),
            Err(e) if must_watch => return Err(e),
            Err(_) => None,
        };
        let gateway = measure(p, self.label("gateway", number), |tally| async move {
            match p.workload {
                BenchWorkload::Publish => gateway::publish(client, p, &tally).await,
                BenchWorkload::PublishStream => gateway::publish_stream(client, p, &tally).await,
                BenchWorkload::Subscribe => {
                    read::subscribe(client, &p.topic, p.records, &tally).await
                }
                BenchWorkload::E2e => e2e::run(client, p, &tally).await,
            }
        })
        .await?;
        let server = match watch {
            Some(watch) => watch.finish().await.ok(),
            None => None,
        };
        let direct = match self.direct {
            Some(kafka) => Some(
                measure(p, self.label("direct", number), |tally| async move {
                    direct::run(kafka, p, &tally).await
                })
                .await?,
            ),
            None => None,
        };
        Ok(Round::new(&gateway, direct.as_ref(), server, p.size))
    }

    /// The progress line's label: side, workload, and the round when there are several.
    fn label(&self, side: &str, number: u32) -> String {
        let name = self.plan.name();
        match self.plan.rounds {
            1 => format!("{side} {name}"),
            rounds => format!("{side} {name}, round {number} of {rounds}"),
        }
    }
}

/// Runs `workload` with a fresh tally and a progress line labelled `label`.
async fn measure<'a, F, Fut>(
    plan: &'a Plan,
    label: String,
    workload: F,
) -> Result<Measured, Failure>
where
    F: FnOnce(Tally) -> Fut,
    Fut: Future<Output = Result<(), Failure>> + 'a,
{
    let tally = Tally::start(plan.warmup);
    let progress = Progress::start(label, plan.records, &tally, plan.quiet);
    let result = workload(tally.clone()).await;
    progress.stop();
    result.map(|()| tally.finish())
}

/// Publishes `missing` records so that the topic holds what subscribe will read.
async fn preload(client: &Client, plan: &Plan, missing: u64) -> Result<Preload, Failure> {
    let started = Instant::now();
    let preload_plan = Plan {
        records: missing,
        concurrency: 4,
        ..plan.clone()
    };
    let p = &preload_plan;
    let measured = measure(p, format!("preload {}", p.name()), |tally| async move {
        gateway::publish_stream(client, p, &tally).await
    })
    .await?;
    if let Some((code, _)) = measured.counts.errors.iter().next() {
        return Err(Failure::refused(format!(
            "bench subscribe: publishing the records to read failed ({code})"
        )));
    }
    Ok(Preload {
        records: measured.counts.all.records,
        elapsed: started.elapsed(),
    })
}

/// Makes sure the topic exists (creating it with `--direct`) and returns how many records
/// it holds.
async fn ensure_topic(client: &Client, plan: &Plan, args: &BenchArgs) -> Result<u64, Failure> {
    if let Some(held) = read::records_held(client, &plan.topic).await? {
        return Ok(held);
    }
    let Some(kafka) = direct_side(args) else {
        return Err(missing_topic(&plan.topic, args.partitions));
    };
    direct::create_topic(&kafka, &plan.topic, args.partitions).await?;
    let deadline = Instant::now() + TOPIC_VISIBLE_WITHIN;
    loop {
        if let Some(held) = read::records_held(client, &plan.topic).await? {
            return Ok(held);
        }
        if Instant::now() > deadline {
            return Err(Failure::unreachable(format!(
                "topic {} was created on {} but the server does not see it: is --direct the server's cluster?",
                plan.topic, kafka.bootstrap
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Kafka side of `--direct`, with its `-X` properties.
fn direct_side(args: &BenchArgs) -> Option<direct::Direct> {
    args.direct.as_ref().map(|bootstrap| direct::Direct {
        bootstrap: bootstrap.clone(),
        options: args.direct_options.clone(),
    })
}

fn missing_topic(topic: &str, partitions: i32) -> Failure {
    Failure::refused(format!(
        "NOT_FOUND: topic {topic} does not exist. Create it, e.g. \
             `kafka-topics.sh --bootstrap-server BROKER --create --topic {topic} --partitions {partitions}`, \
             or pass --direct BROKER and bench creates it (and compares with Kafka direct)"
    ))
}
