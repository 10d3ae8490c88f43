//! The publish workloads through streamgate: unary Publish calls, and PublishStreams that
//! each keep [`STREAM_WINDOW`] records unacknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use streamgate::proto::{PublishRequest, PublishResult, publish_request, publish_result};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;

use streamgate_cli::failure::code_name;

use crate::plan::{Plan, STREAM_WINDOW, is_transient, join_all};
use crate::stats::Tally;
use crate::values::Feed;
use crate::{Client, Failure};

/// A raw-value record for `topic`, partition chosen by the server (a null key spreads).
pub fn request(topic: &str, value: Bytes) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        key: None,
        headers: Vec::new(),
        payload: Some(publish_request::Payload::Value(value)),
        partition: None,
        timestamp: None,
    }
}

/// Counts a failed call, or stops the run when the server refused it.
pub fn failed(tally: &Tally, status: &tonic::Status) -> Result<(), Failure> {
    if is_transient(status.code()) {
        tally.error(&code_name(status.code()));
        Ok(())
    } else {
        Err(Failure::from_status(status))
    }
}

/// `plan.records` unary Publish calls, `plan.concurrency` in flight, over one connection
/// (HTTP/2 multiplexes them, as any gRPC client would).
pub async fn publish(client: &Client, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    let next = Arc::new(AtomicU64::new(0));
    let value = plan.value();
    let mut tasks = JoinSet::new();
    for _ in 0..plan.concurrency {
        let (mut client, next, tally) = (client.clone(), next.clone(), tally.clone());
        let (value, topic, records) = (value.clone(), plan.topic.clone(), plan.records);
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < records {
                let sent = Instant::now();
                match client.publish(request(&topic, value.clone())).await {
                    Ok(_) => tally.done(Some(sent.elapsed())),
                    Err(status) => failed(&tally, &status)?,
                }
            }
            Ok(())
        });
    }
    join_all(tasks).await
}

/// `plan.records` records over `plan.concurrency` PublishStreams; latency is from handing a
/// record to the stream to its acknowledgement. The records are `plan.values`: the raw
/// value, or the preload's PageEvents, numbered across the streams.
pub async fn publish_stream(client: &Client, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    let mut tasks = JoinSet::new();
    let streams = plan.concurrency.min(plan.records);
    let feed = Feed::new(&plan.topic, plan.values, plan.value(), plan.partitions);
    let mut first = 0;
    for i in 0..streams {
        // The first streams take the remainder, so the counts add up to exactly N.
        let share = plan.records / streams + u64::from(i < plan.records % streams);
        let (client, tally, feed) = (client.clone(), tally.clone(), feed.clone());
        let numbers = first..first + share;
        first += share;
        tasks.spawn(async move { one_stream(client, feed, numbers, tally).await });
    }
    join_all(tasks).await
}

async fn one_stream(
    mut client: Client,
    feed: Feed,
    numbers: std::ops::Range<u64>,
    tally: Tally,
) -> Result<(), Failure> {
    let window = usize::try_from(STREAM_WINDOW).unwrap_or(1024);
    let (requests, requests_rx) = mpsc::channel(window);
    // Send times, in request order: results come back in that order. Its capacity is what
    // bounds the records in flight: the feeder waits for an acknowledgement to free a slot.
    let (times, mut times_rx) = mpsc::channel::<Instant>(window);
    let feeder = tokio::spawn(async move {
        for number in numbers {
            if times.send(Instant::now()).await.is_err()
                || requests.send(feed.request(number)).await.is_err()
            {
                break;
            }
        }
    });
    let mut results = client
        .publish_stream(ReceiverStream::new(requests_rx))
        .await?
        .into_inner();
    let outcome = async {
        while let Some(result) = results.next().await {
            let sent = times_rx.recv().await;
            count_result(&tally, result?, sent)?;
        }
        Ok(())
    }
    .await;
    feeder.abort();
    outcome
}

/// Counts one PublishStream result; a refused record stops the run like a refused call.
pub fn count_result(
    tally: &Tally,
    result: PublishResult,
    sent: Option<Instant>,
) -> Result<(), Failure> {
    match rejection(result) {
        None => {
            tally.done(sent.map(|s| s.elapsed()));
            Ok(())
        }
        Some(status) => failed(tally, &status),
    }
}

/// Why a PublishStream record was not published, or `None` for an acknowledgement.
pub fn rejection(result: PublishResult) -> Option<tonic::Status> {
    match result.outcome {
        Some(publish_result::Outcome::Error(error)) => Some(tonic::Status::new(
            tonic::Code::from(error.code),
            error.message,
        )),
        Some(publish_result::Outcome::Ack(_)) => None,
        None => Some(tonic::Status::unknown(
            "a PublishStream result without outcome",
        )),
    }
}
