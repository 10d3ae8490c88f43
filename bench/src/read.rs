//! The reading workloads through streamgate: how many records the topic holds, reading N of
//! them from the earliest offset, and the live subscriber of e2e.

use futures::StreamExt;
use prost::Message as _;
use streamgate::proto::{
    Assignment, ListTopicsRequest, Record, StartPosition, SubscribeRequest, SubscribeResponse,
    TopicInfo, start_position, subscribe_response,
};
use tonic::Streaming;

use crate::scan::{Counting, END_KEY, Scan, server_filter};
use crate::stats::Tally;
use crate::{Client, Failure};

/// `topic` as ListTopics describes it, or `None` when the cluster has no such topic.
pub async fn topic_info(client: &Client, topic: &str) -> Result<Option<TopicInfo>, Failure> {
    let topics = client
        .clone()
        .list_topics(ListTopicsRequest::default())
        .await?
        .into_inner()
        .topics;
    Ok(topics.into_iter().find(|t| t.name == topic))
}

/// Records stored in a topic: high minus low watermark, summed over its partitions.
pub fn records_in(topic: &TopicInfo) -> u64 {
    topic
        .partitions
        .iter()
        .map(|p| u64::try_from(p.high_watermark - p.low_watermark).unwrap_or(0))
        .sum()
}

/// The records a Subscribe message carries: the unit of every figure is a record, whatever
/// the server packs into one message (one record, or a batch).
pub fn records_of(message: &subscribe_response::Message) -> &[Record] {
    match message {
        subscribe_response::Message::Assignment(_) => &[],
        subscribe_response::Message::Record(record) => std::slice::from_ref(record),
        subscribe_response::Message::Records(batch) => &batch.records,
    }
}

/// The Subscribe request of `topic` (no group) from `position`, whatever the protocol.
pub fn request(
    topic: &str,
    position: start_position::Position,
    max_records: Option<u64>,
) -> SubscribeRequest {
    SubscribeRequest {
        topics: vec![topic.to_owned()],
        group: None,
        start: Some(StartPosition {
            position: Some(position),
        }),
        // Not `stop_at_end`: some Kafka-compatible brokers (Tansu) move the high watermark
        // by batches, so the end seen at the start can be short of the records stored. A
        // topic that holds fewer records than asked fails on the idle timeout instead.
        stop_at_end: false,
        max_records,
        // What `streamgate subscribe` asks for to print its lines; like the direct side's
        // consumer, which never asks librdkafka for a record's headers.
        read_mask: Some(streamgate_cli::line_mask()),
        resume: Vec::new(),
        filter: String::new(),
        decode: false,
    }
}

/// A Subscribe stream of `topic` (no group) from `position`, returned once the server sent
/// its Assignment: from then on it is reading.
pub async fn open(
    client: &Client,
    topic: &str,
    position: start_position::Position,
    max_records: Option<u64>,
) -> Result<Streaming<SubscribeResponse>, Failure> {
    let (stream, _) = open_with(client, request(topic, position, max_records)).await?;
    Ok(stream)
}

/// The Subscribe stream of `request` and its Assignment, once the server sent it.
pub async fn open_with(
    client: &Client,
    request: SubscribeRequest,
) -> Result<(Streaming<SubscribeResponse>, Assignment), Failure> {
    let mut stream = client.clone().subscribe(request).await?.into_inner();
    match stream.next().await {
        Some(Ok(SubscribeResponse {
            message: Some(subscribe_response::Message::Assignment(assignment)),
        })) => Ok((stream, assignment)),
        Some(Err(status)) => Err(status.into()),
        _ => Err(Failure::refused(
            "the Subscribe stream did not start with an Assignment",
        )),
    }
}

/// How long the subscribe workload waits for a next record before it gives up.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `next`, unless nothing comes for [`IDLE_TIMEOUT`]: then the topic holds fewer than the
/// `records` records of `topic` the run asked for.
pub async fn within_idle<F: Future>(
    topic: &str,
    records: u64,
    next: F,
) -> Result<F::Output, Failure> {
    idle_bounded(next, || {
        format!(
            "no record of {topic} for {IDLE_TIMEOUT:?}: the topic holds fewer than the {records} records asked for (--records)"
        )
    })
    .await
}

/// `next`, unless nothing comes for [`IDLE_TIMEOUT`]: then the run fails with `stalled`'s
/// message.
pub async fn idle_bounded<F: Future>(
    next: F,
    stalled: impl FnOnce() -> String,
) -> Result<F::Output, Failure> {
    tokio::time::timeout(IDLE_TIMEOUT, next)
        .await
        .map_err(|_| Failure::refused(stalled()))
}

/// Counts what a reader receives into its tally, whose clock restarts at the first record,
/// so that opening the stream and the first fetch stay out of the figures.
pub struct Reading<'a> {
    tally: &'a Tally,
    first: bool,
}

impl<'a> Reading<'a> {
    /// Counting into `tally`.
    pub fn new(tally: &'a Tally) -> Self {
        Self { tally, first: true }
    }

    /// `records` more records received (none for a message without records).
    pub fn count(&mut self, records: u64) {
        if records > 0 && std::mem::take(&mut self.first) {
            self.tally.restart();
        }
        self.tally.done_many(records);
    }
}

/// Reads `records` records of `topic` from the earliest offset into `tally` over gRPC.
pub async fn subscribe(
    client: &Client,
    topic: &str,
    records: u64,
    tally: &Tally,
) -> Result<(), Failure> {
    let position = start_position::Position::Earliest(true);
    let mut stream = open(client, topic, position, Some(records)).await?;
    let mut reading = Reading::new(tally);
    while let Some(message) = within_idle(topic, records, stream.next()).await? {
        if let Some(message) = message?.message {
            reading.count(records_of(&message).len() as u64);
        }
    }
    Ok(())
}

/// Whether a record's key is the end marker's.
pub fn is_end_marker(key: Option<&[u8]>) -> bool {
    key == Some(END_KEY.as_bytes())
}

/// Where each partition of `topic` starts, from an Assignment: its `start_offset`, or its
/// low watermark where the start is unknown (-1).
pub fn starts(assignment: &Assignment, topic: &str) -> Vec<(i32, i64)> {
    assignment
        .partitions
        .iter()
        .filter(|p| p.topic == topic)
        .map(|p| {
            let start = if p.start_offset >= 0 {
                p.start_offset
            } else {
                p.low_watermark
            };
            (p.partition, start)
        })
        .collect()
}

/// The message when a stream ended (well) before every partition's end marker came.
pub fn ended_early(topic: &str) -> Failure {
    Failure::refused(format!(
        "the Subscribe stream of {topic} ended before every partition's end marker ({END_KEY})"
    ))
}

/// Reads `topic` from the earliest offset over gRPC through `filter` ('' for none) until
/// every partition's end marker has come ([`crate::scan`]): records read into `tally`, and
/// the records and bytes received (each message's protobuf bytes as the server wrote them:
/// its encoder writes exactly prost's bytes, so `encoded_len` of the decoded message is
/// what came, less gRPC's 5-byte prefix and HTTP/2's framing).
pub async fn scan(
    client: &Client,
    topic: &str,
    filter: &str,
    tally: &Tally,
) -> Result<(), Failure> {
    let request = SubscribeRequest {
        filter: server_filter(filter),
        ..request(topic, start_position::Position::Earliest(true), None)
    };
    let (mut stream, assignment) = open_with(client, request).await?;
    let mut counting = Counting::new(Scan::new(starts(&assignment, topic)), tally);
    while !counting.is_done() {
        let next = idle_bounded(stream.next(), || counting.stalled(topic)).await?;
        let Some(response) = next.transpose()? else {
            return Err(ended_early(topic));
        };
        let Some(message) = &response.message else {
            continue;
        };
        let records = records_of(message);
        if records.is_empty() {
            continue;
        }
        let bytes = response.encoded_len() as u64;
        let each = records
            .iter()
            .map(|r| (r.partition, r.offset, is_end_marker(r.key.as_deref())));
        counting.message(each, bytes);
    }
    Ok(())
}
