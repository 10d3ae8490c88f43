//! `streamgate topics`: the cluster's topics, partitions and record counts.

use std::io::Write;

use streamgate::proto::ListTopicsRequest;

use crate::Client;
use crate::Failure;
use crate::args::TopicsArgs;

/// Runs the subcommand.
pub async fn run(mut client: Client, args: TopicsArgs) -> Result<(), Failure> {
    let topics = client
        .list_topics(ListTopicsRequest {
            include_internal: args.internal,
        })
        .await?
        .into_inner()
        .topics;
    let mut out = std::io::stdout().lock();
    if args.json {
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
