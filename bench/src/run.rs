//! What a bench does: makes sure the topic exists (creating it through the server),
//! publishes what a subscribe run needs to read (with a filter, ending each partition with
//! an end marker), then runs the rounds — the workload through the gateway over
//! `--protocol`, then with `--direct` straight on Kafka, with `--compare-protocol` through
//! the gateway again over that protocol, or with `--compare-filter` through the gateway
//! again with that filter — and prints the report.

use std::time::{Duration, Instant};

use streamgate_cli::interrupt::interruptible;

use crate::args::{BenchArgs, BenchWorkload, Protocol};
use crate::connect::Codec;
use crate::plan::{Baseline, Plan, protocol_name};
use crate::progress::Progress;
use crate::report::{Preload, Report, Round, Run};
use crate::stats::{Measured, Tally};
use crate::web::Web;
use streamgate::proto::{CreateTopicRequest, TopicInfo};

use crate::{Admin, Client, Failure, connect, direct, e2e, gateway, read, server, sse, values};

/// How long a topic the bench created may take to show in the server's metadata.
const TOPIC_VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// Runs `plan` (made of `args`); Ctrl-C stops it with exit code 130.
/// `client` makes the gRPC calls, `web` the Connect and SSE requests (over the same
/// connection); `server` reads the server's own CPU and memory (its `/metrics`) when
/// `--server-pid` names no local process.
pub async fn run(
    client: Client,
    admin: Admin,
    web: Web,
    server: server::Probe,
    plan: Plan,
    args: BenchArgs,
) -> Result<(), Failure> {
    interruptible(bench(client, admin, web, server, plan, args)).await?
}

async fn bench(
    client: Client,
    admin: Admin,
    web: Web,
    probe: server::Probe,
    mut plan: Plan,
    args: BenchArgs,
) -> Result<(), Failure> {
    let topic = ensure_topic(&client, &admin, &plan, args.partitions).await?;
    let held = read::records_in(&topic);
    plan.partitions = i32::try_from(topic.partitions.len()).unwrap_or(plan.partitions);
    let preload = match plan.workload {
        // A filtered run reads from the earliest offset to each partition's end marker:
        // only a topic it preloads itself has them where they belong. (Watermarks cannot
        // tell whether markers are there: Tansu's count batches, not records.)
        BenchWorkload::Subscribe if plan.scan && held > 0 => {
            return Err(Failure::usage(format!(
                "bench subscribe --filter reads a topic it preloads itself, ending each partition with an end marker, but {} holds records already: give a fresh --topic",
                plan.topic
            )));
        }
        BenchWorkload::Subscribe if plan.scan => Some(preload(&client, &plan, plan.records).await?),
        BenchWorkload::Subscribe if held < plan.records => {
            Some(preload(&client, &plan, plan.records - held).await?)
        }
        _ => None,
    };
    if plan.scan && preload.is_some() {
        end_markers(&client, &plan.topic, &topic).await?;
    }
    let probe = args.server_pid.map_or(probe, server::Probe::Pid);
    let direct = direct_side(&args);
    let sides = Sides {
        client: &client,
        web: &web,
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

/// What a round runs: the workload through the gateway over `--protocol`, then its
/// baseline: on Kafka with `--direct`, or over the protocol of `--compare-protocol`.
struct Sides<'a> {
    client: &'a Client,
    web: &'a Web,
    plan: &'a Plan,
    direct: Option<&'a direct::Direct>,
}

impl Sides<'_> {
    /// Round `number`: the gateway run with the server's usage during it, then the
    /// baseline's run.
    async fn round(
        &self,
        number: u32,
        probe: &server::Probe,
        must_watch: bool,
    ) -> Result<Round, Failure> {
        let p = self.plan;
        let (first, second) = p.side_names();
        let watch = (probe, must_watch);
        let side = |protocol, filter| Side {
            protocol,
            filter,
            label: self.label(first, protocol, number),
        };
        let gateway = self.gateway(side(p.protocol, &p.filter), watch).await?;
        let second = second.unwrap_or("compared");
        let baseline = match (p.baseline, self.direct) {
            (Some(Baseline::Protocol(protocol)), _) => {
                let side = Side {
                    label: self.label(second, protocol, number),
                    ..side(protocol, &p.filter)
                };
                Some(self.gateway(side, watch).await?)
            }
            (Some(Baseline::Filter), _) => {
                let side = Side {
                    label: self.label(second, p.protocol, number),
                    ..side(p.protocol, &p.compare_filter)
                };
                Some(self.gateway(side, watch).await?)
            }
            (Some(Baseline::Direct), Some(kafka)) => {
                let label = self.numbered("direct", number);
                let measured = measure(p, label, |tally| async move {
                    direct::run(kafka, p, &tally).await
                })
                .await?;
                Some(Run {
                    measured,
                    server: None,
                    scanned: false,
                })
            }
            _ => None,
        };
        Ok(Round::new(gateway, baseline, p.size))
    }

    /// The workload through the gateway as `side` says, with the server's usage meanwhile
    /// (read through `probe`; when it cannot be read, the run fails if `must_watch`).
    async fn gateway(
        &self,
        side: Side<'_>,
        (probe, must_watch): (&server::Probe, bool),
    ) -> Result<Run, Failure> {
        let (client, web, p) = (self.client, self.web, self.plan);
        let Side {
            protocol,
            filter,
            label,
        } = side;
        // A server that does not report (an older one, or a token without `metrics`) is
        // measured without its usage, unless --server-pid asked for it.
        let watch = match server::Watch::start(probe.clone()).await {
            Ok(watch) => Some(watch),
            Err(e) if must_watch => return Err(e),
            Err(_) => None,
        };
        let measured = measure(p, label, |tally| async move {
            workload(client, web, p, (protocol, filter), &tally).await
        })
        .await?;
        let server = match watch {
            Some(watch) => watch.finish().await.ok(),
            None => None,
        };
        Ok(Run {
            measured,
            server,
            scanned: p.scan && p.workload == BenchWorkload::Subscribe,
        })
    }

    /// The progress line's label of a run through the gateway: its heading (with a filter,
    /// the side's name: `filtered`, `unfiltered`).
    fn label(&self, side: &str, protocol: Protocol, number: u32) -> String {
        let p = self.plan;
        match p.baseline {
            Some(Baseline::Filter) => {
                self.numbered(&format!("{} {side}", p.heading(protocol)), number)
            }
            _ => self.numbered(&p.heading(protocol), number),
        }
    }

    /// The progress line's label: side, workload, and the round when there are several.
    fn numbered(&self, side: &str, number: u32) -> String {
        let name = self.plan.name();
        match self.plan.rounds {
            1 => format!("{side} {name}"),
            rounds => format!("{side} {name}, round {number} of {rounds}"),
        }
    }
}

/// One run through the gateway: over which protocol, through which filter ('' for none;
/// used by a filtered subscribe run only), and its progress line's label.
struct Side<'a> {
    protocol: Protocol,
    filter: &'a str,
    label: String,
}

/// `plan`'s workload through the gateway over `protocol` (a filtered subscribe run: through
/// `filter`).
async fn workload(
    client: &Client,
    web: &Web,
    plan: &Plan,
    (protocol, filter): (Protocol, &str),
    tally: &Tally,
) -> Result<(), Failure> {
    use BenchWorkload::{E2e, Publish, PublishStream, Subscribe};
    let (topic, records) = (plan.topic.as_str(), plan.records);
    if plan.scan && plan.workload == Subscribe {
        return match protocol {
            Protocol::Grpc => read::scan(client, topic, filter, tally).await,
            Protocol::ConnectProto => connect::scan(web, topic, filter, Codec::Proto, tally).await,
            Protocol::ConnectJson => connect::scan(web, topic, filter, Codec::Json, tally).await,
            Protocol::Sse => sse::scan(web, client, topic, filter, tally).await,
        };
    }
    match (plan.workload, protocol) {
        (Publish, Protocol::Grpc) => gateway::publish(client, plan, tally).await,
        (Publish, Protocol::ConnectProto) => connect::publish(web, plan, Codec::Proto, tally).await,
        (Publish, Protocol::ConnectJson) => connect::publish(web, plan, Codec::Json, tally).await,
        (PublishStream, Protocol::Grpc) => gateway::publish_stream(client, plan, tally).await,
        (Subscribe, Protocol::Grpc) => read::subscribe(client, topic, records, tally).await,
        (Subscribe, Protocol::ConnectProto) => {
            connect::subscribe(web, topic, records, Codec::Proto, tally).await
        }
        (Subscribe, Protocol::ConnectJson) => {
            connect::subscribe(web, topic, records, Codec::Json, tally).await
        }
        (Subscribe, Protocol::Sse) => sse::subscribe(web, topic, records, tally).await,
        (E2e, Protocol::Grpc) => e2e::run(client, plan, tally).await,
        // Refused with the reason by Plan::new, before anything ran.
        (workload, protocol) => Err(Failure::usage(format!(
            "bench {} does not run over {}",
            crate::plan::name(workload),
            protocol_name(protocol)
        ))),
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

/// Writes the end marker of every partition of `info` ([`values::end_marker`]), once the
/// preload's records are all acknowledged: each is its partition's last record.
async fn end_markers(client: &Client, topic: &str, info: &TopicInfo) -> Result<(), Failure> {
    for partition in &info.partitions {
        let marker = values::end_marker(topic, partition.partition);
        client.clone().publish(marker).await?;
    }
    Ok(())
}

/// Makes sure the topic exists, creating it through the server's AdminService (no broker
/// address needed); what ListTopics says of it (the records it holds already, its
/// partitions).
async fn ensure_topic(
    client: &Client,
    admin: &Admin,
    plan: &Plan,
    partitions: i32,
) -> Result<TopicInfo, Failure> {
    if let Some(info) = read::topic_info(client, &plan.topic).await? {
        return Ok(info);
    }
    let request = CreateTopicRequest {
        topic: plan.topic.clone(),
        partitions,
        ..Default::default()
    };
    match admin.clone().create_topic(request).await {
        Ok(_) => {}
        // Created meanwhile by someone else: fine.
        Err(status) if status.code() == tonic::Code::AlreadyExists => {}
        Err(status) => return Err(Failure::from_status(&status)),
    }
    let deadline = Instant::now() + TOPIC_VISIBLE_WITHIN;
    loop {
        if let Some(info) = read::topic_info(client, &plan.topic).await? {
            return Ok(info);
        }
        if Instant::now() > deadline {
            return Err(Failure::unreachable(format!(
                "topic {} was created but the server does not list it within {TOPIC_VISIBLE_WITHIN:?}",
                plan.topic
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
