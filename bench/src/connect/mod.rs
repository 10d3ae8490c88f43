//! The workloads over the Connect protocol (connectrpc.com): unary Publish calls (`POST
//! /streamgate.v1.EventGateway/Publish`, the message as the body) and the Subscribe server
//! stream (enveloped messages, the status in the end-of-stream message), in binary protobuf
//! or JSON ([`Codec`]). They mirror the gRPC workloads call for call — the same requests,
//! the same concurrency over one HTTP/2 connection, the same handling of failures — so that
//! the ratio between the two is the protocol's.

mod codec;
mod envelope;
pub mod error;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;
use tokio::task::JoinSet;
use tonic::Status;
use tonic::body::Body;

use codec::Scanned;
pub use codec::{Codec, json_record};
use envelope::{COMPRESSED, END_STREAM, Splitter};
use streamgate::proto::{SubscribeRequest, start_position};

use crate::Failure;
use crate::gateway::failed;
use crate::plan::{Plan, join_all};
use crate::read::{self, Reading, ended_early, idle_bounded, within_idle};
use crate::scan::{Counting, Scan, server_filter};
use crate::stats::Tally;
use crate::web::{Web, next_data, whole};

const PUBLISH: &str = "/streamgate.v1.EventGateway/Publish";
const SUBSCRIBE: &str = "/streamgate.v1.EventGateway/Subscribe";

/// `plan.records` unary Publish calls, `plan.concurrency` in flight over one connection, as
/// [`gateway::publish`](crate::gateway::publish) makes them over gRPC.
pub async fn publish(web: &Web, plan: &Plan, codec: Codec, tally: &Tally) -> Result<(), Failure> {
    let next = Arc::new(AtomicU64::new(0));
    let value = plan.value();
    let mut tasks = JoinSet::new();
    for _ in 0..plan.concurrency {
        let (mut web, next, tally) = (web.clone(), next.clone(), tally.clone());
        let (value, topic, records) = (value.clone(), plan.topic.clone(), plan.records);
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < records {
                let sent = Instant::now();
                match publish_one(&mut web, codec, &topic, &value).await {
                    Ok(()) => tally.done(Some(sent.elapsed())),
                    Err(status) => failed(&tally, &status)?,
                }
            }
            Ok(())
        });
    }
    join_all(tasks).await
}

/// One Publish call; its answer is decoded, as a client would.
async fn publish_one(
    web: &mut Web,
    codec: Codec,
    topic: &str,
    value: &Bytes,
) -> Result<(), Status> {
    let request = web
        .request(Method::POST, PUBLISH)
        .header(header::CONTENT_TYPE, codec.unary_type())
        .header("connect-protocol-version", "1")
        .body(Body::new(Full::new(codec.publish(topic, value))));
    let (parts, body) = web.send(request).await?.into_parts();
    let body = whole(body).await?;
    if parts.status != StatusCode::OK {
        return Err(error::status(parts.status, &body));
    }
    codec.published(&body)
}

/// Reads `records` records of `topic` from the earliest offset over a Connect Subscribe
/// stream, as [`read::subscribe`](crate::read::subscribe) does over gRPC.
pub async fn subscribe(
    web: &Web,
    topic: &str,
    records: u64,
    codec: Codec,
    tally: &Tally,
) -> Result<(), Failure> {
    let request = web
        .request(Method::POST, SUBSCRIBE)
        .header(header::CONTENT_TYPE, codec.stream_type())
        .header("connect-protocol-version", "1")
        .body(Body::new(Full::new(envelope::encode(
            0,
            &codec.subscribe(topic, records),
        ))));
    let (parts, mut body) = web.clone().send(request).await?.into_parts();
    // Refused before the stream started (a method or a content type it does not take): a
    // unary-style error. A refusal by the handler comes as the end of a 200 stream.
    if parts.status != StatusCode::OK {
        let body = whole(body).await?;
        return Err(error::status(parts.status, &body).into());
    }
    let (mut splitter, mut reading) = (Splitter::default(), Reading::new(tally));
    while let Some(data) = within_idle(topic, records, next_data(&mut body)).await? {
        splitter.push(&data?);
        while let Some(envelope) = splitter.next() {
            if envelope.flags & END_STREAM != 0 {
                return end_of_stream(&envelope.message);
            }
            if envelope.flags & COMPRESSED != 0 {
                return Err(
                    Status::internal("a compressed message, though none was asked for").into(),
                );
            }
            reading.count(codec.records_in(&envelope.message)?);
        }
    }
    Err(Status::internal("the Subscribe stream ended without its end-of-stream message").into())
}

/// Reads `topic` from the earliest offset over a Connect Subscribe stream through `filter`
/// ('' for none) until every partition's end marker has come, as [`read::scan`] does over
/// gRPC; the bytes received are each enveloped message's (protobuf or JSON), without the
/// envelope's 5-byte prefix.
pub async fn scan(
    web: &Web,
    topic: &str,
    filter: &str,
    codec: Codec,
    tally: &Tally,
) -> Result<(), Failure> {
    let request = SubscribeRequest {
        filter: server_filter(filter),
        ..read::request(topic, start_position::Position::Earliest(true), None)
    };
    let request = web
        .request(Method::POST, SUBSCRIBE)
        .header(header::CONTENT_TYPE, codec.stream_type())
        .header("connect-protocol-version", "1")
        .body(Body::new(Full::new(envelope::encode(
            0,
            &codec.subscribe_request(&request),
        ))));
    let (parts, mut body) = web.clone().send(request).await?.into_parts();
    if parts.status != StatusCode::OK {
        let body = whole(body).await?;
        return Err(error::status(parts.status, &body).into());
    }
    let mut splitter = Splitter::default();
    // Made at the Assignment, the stream's first message, which says where each partition
    // starts.
    let mut counting: Option<Counting<'_>> = None;
    loop {
        let stalled = || match &counting {
            Some(counting) => counting.stalled(topic),
            None => format!("no Assignment from the Subscribe stream of {topic}"),
        };
        let Some(data) = idle_bounded(next_data(&mut body), stalled).await? else {
            return Err(Status::internal(
                "the Subscribe stream ended without its end-of-stream message",
            )
            .into());
        };
        splitter.push(&data?);
        while let Some(envelope) = splitter.next() {
            if envelope.flags & END_STREAM != 0 {
                end_of_stream(&envelope.message)?;
                return Err(ended_early(topic));
            }
            if envelope.flags & COMPRESSED != 0 {
                return Err(
                    Status::internal("a compressed message, though none was asked for").into(),
                );
            }
            match codec.scanned(topic, &envelope.message)? {
                Some(Scanned::Assignment(starts)) if counting.is_none() => {
                    counting = Some(Counting::new(Scan::new(starts), tally));
                }
                Some(Scanned::Records(records)) if !records.is_empty() => {
                    let counting = counting.as_mut().ok_or_else(|| {
                        Status::internal("records before the Subscribe stream's Assignment")
                    })?;
                    counting.message(records, envelope.message.len() as u64);
                    if counting.is_done() {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }
}

/// The end-of-stream message: `{}` for a stream that ended well, else its error, which
/// stops the run as a gRPC stream's status does.
fn end_of_stream(message: &[u8]) -> Result<(), Failure> {
    let end: Value = serde_json::from_slice(message)
        .map_err(|e| Status::internal(format!("the end-of-stream message: {e}")))?;
    match end.get("error") {
        None => Ok(()),
        Some(error) => Err(error::from_json(error)
            .unwrap_or_else(|| Status::unknown(format!("the stream ended with {error}")))
            .into()),
    }
}
