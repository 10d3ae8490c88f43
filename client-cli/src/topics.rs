//! `streamgate topics`: the cluster's topics, partitions and record counts (EventGateway's
//! ListTopics); with a subcommand, one topic managed ([`admin::topics`]).

use std::io::Write;

use streamgate::auth::BearerToken;
use streamgate::proto::ListTopicsRequest;
use tonic::transport::Channel;

use crate::Failure;
use crate::admin;
use crate::args::TopicsArgs;
use crate::connect::gateway;

/// Runs the subcommand: the list, or what a subcommand says.
pub async fn run(channel: Channel, token: BearerToken, args: TopicsArgs) -> Result<(), Failure> {
    match args.action {
        None => list(channel, token, args.internal, args.json).await,
        Some(action) => admin::topics::run(admin::client(channel, token), action, args.json).await,
    }
}

/// `streamgate topics`: one row (or JSON object) per topic.
async fn list(
    channel: Channel,
    token: BearerToken,
    internal: bool,
    json: bool,
) -> Result<(), Failure> {
    let topics = gateway(channel, token)
        .list_topics(ListTopicsRequest {
            include_internal: internal,
        })
        .await?
        .into_inner()
        .topics;
    let mut out = std::io::stdout().lock();
    if json {
        for topic in &topics {
            let partitions: Vec<_> = topic
                .partitions
                .iter()
                .map(|p| serde_json::json!({"partition": p.partition, "leader": p.leader, "low": p.low_watermark, "high": p.high_watermark}))
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({"name": topic.name, "partitions": partitions})
            )
            .map_err(Failure::io)?;
        }
        return Ok(());
    }
    let width = topics
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$}  {:>10}  {:>12}",
        "TOPIC", "PARTITIONS", "RECORDS"
    )
    .map_err(Failure::io)?;
    for topic in &topics {
        let records: i64 = topic
            .partitions
            .iter()
            .map(|p| p.high_watermark - p.low_watermark)
            .sum();
        writeln!(
            out,
            "{:<width$}  {:>10}  {:>12}",
            topic.name,
            topic.partitions.len(),
            records
        )
        .map_err(Failure::io)?;
    }
    Ok(())
}
