//! A Subscribe stream read the way `streamgate subscribe` prints it: the same messages on the
//! wire as `SubscribeResponse`, but each record left as its encoded bytes (a slice of the
//! received buffer, not a copy) and decoded only as far as its line needs.
//!
//! Decoding every record into the generated `Record` — an owned topic string, key, value and
//! headers, the PageEvent — and dropping it again was the largest part of the command's time
//! on a busy stream. A text line needs six fields, read here without a copy ([`RecordLine`]:
//! the other fields are skipped unread); `--json` shows everything and decodes the `Record`.

use bytes::Bytes;
use streamgate::auth::BearerToken;
use streamgate::proto::{Assignment, SubscribeRequest};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

/// `streamgate.v1.SubscribeResponse` with its records left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeFrame {
    #[prost(oneof = "Frame", tags = "1, 2, 3")]
    pub frame: Option<Frame>,
}

/// What one Subscribe message carries.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Frame {
    /// Where the stream starts (first, and again after a group rebalance).
    #[prost(message, tag = "1")]
    Assignment(Assignment),
    /// One encoded `Record` (servers before record batches).
    #[prost(bytes = "bytes", tag = "2")]
    Record(Bytes),
    /// A `RecordBatch`, its records encoded.
    #[prost(message, tag = "3")]
    Records(EncodedBatch),
}

/// `streamgate.v1.RecordBatch` with each `Record` left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedBatch {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub records: Vec<Bytes>,
}

/// The fields of a `streamgate.v1.Record` that a text line shows, the bytes ones as slices
/// of the record's buffer. The topic is read as bytes (a `string` is the same on the wire).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordLine {
    #[prost(bytes = "bytes", tag = "1")]
    pub topic: Bytes,
    #[prost(int32, tag = "2")]
    pub partition: i32,
    #[prost(int64, tag = "3")]
    pub offset: i64,
    #[prost(message, optional, tag = "4")]
    pub timestamp: Option<prost_types::Timestamp>,
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub key: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "8")]
    pub value: Option<Bytes>,
    /// Only with `--decode` (the server sends them when asked).
    #[prost(message, optional, tag = "10")]
    pub decoded: Option<prost_types::Value>,
    #[prost(string, tag = "11")]
    pub decode_error: String,
}

/// Calls `Subscribe` with `request` on `channel`, the records of the responses left encoded.
pub async fn subscribe(
    channel: Channel,
    token: BearerToken,
    request: SubscribeRequest,
) -> Result<Streaming<SubscribeFrame>, Status> {
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(channel, token))
        .max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
    let path = PathAndQuery::from_static("/streamgate.v1.EventGateway/Subscribe");
    let codec = tonic_prost::ProstCodec::<SubscribeRequest, SubscribeFrame>::default();
    let response = grpc
        .server_streaming(tonic::Request::new(request), path, codec)
        .await?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use streamgate::proto::{
        Header, PageEvent, Record, RecordBatch, SubscribeResponse, subscribe_response,
    };

    fn record(i: i64) -> Record {
        Record {
            topic: format!("topic-{i}"),
            partition: (i % 3) as i32,
            offset: i * 1_000_003,
            timestamp: (i % 4 != 0).then(|| prost_types::Timestamp {
                seconds: 1_795_320_765 + i,
                nanos: (i as i32 % 1000) * 1_000_000,
            }),
            timestamp_type: 1,
            key: (i % 5 != 0).then(|| format!("key-{i}").into_bytes().into()),
            headers: (0..i % 3)
                .map(|h| Header {
                    key: format!("h{h}"),
                    value: vec![h as u8; 3].into(),
                })
                .collect(),
            value: (i % 7 != 0).then(|| vec![b'v'; (i % 50) as usize].into()),
            page_event: (i % 2 == 0).then(|| PageEvent {
                name: "P1".into(),
                user: Some("U2".into()),
                date: None,
                duration_ms: Some(i),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_the_generated_messages_write() {
        let records: Vec<Record> = (0..40).map(record).collect();
        let batch = SubscribeResponse {
            message: Some(subscribe_response::Message::Records(RecordBatch {
                records: records.clone(),
                ..Default::default()
            })),
        };
        let frame = SubscribeFrame::decode(batch.encode_to_vec().as_slice()).expect("frame");
        let Some(Frame::Records(encoded)) = frame.frame else {
            panic!("not a batch: {frame:?}");
        };
        assert_eq!(encoded.records.len(), records.len());
        for (bytes, record) in encoded.records.iter().zip(&records) {
            assert_eq!(&Record::decode(bytes.clone()).expect("record"), record);
            let line = RecordLine::decode(bytes.clone()).expect("line");
            assert_eq!(line.topic, record.topic.as_bytes());
            assert_eq!(line.partition, record.partition);
            assert_eq!(line.offset, record.offset);
            assert_eq!(line.timestamp, record.timestamp);
            assert_eq!(line.key.as_deref(), record.key.as_deref());
            assert_eq!(line.value.as_deref(), record.value.as_deref());
        }
        // A single record and an assignment come through as well.
        let single = SubscribeResponse {
            message: Some(subscribe_response::Message::Record(record(3))),
        };
        let frame = SubscribeFrame::decode(single.encode_to_vec().as_slice()).expect("frame");
        let Some(Frame::Record(bytes)) = frame.frame else {
            panic!("not a record: {frame:?}");
        };
        assert_eq!(Record::decode(bytes.clone()).expect("record"), record(3));
        let assignment = SubscribeResponse {
            message: Some(subscribe_response::Message::Assignment(Assignment {
                group: Some("g".into()),
                ..Default::default()
            })),
        };
        let frame = SubscribeFrame::decode(assignment.encode_to_vec().as_slice()).expect("frame");
        assert!(
            matches!(frame.frame, Some(Frame::Assignment(a)) if a.group.as_deref() == Some("g"))
        );
    }

    #[test]
    fn a_truncated_record_is_an_error_not_a_panic() {
        let bytes = Bytes::from(record(1).encode_to_vec());
        for end in 0..bytes.len() {
            let _ = RecordLine::decode(bytes.slice(..end));
        }
        assert!(RecordLine::decode(bytes.slice(..bytes.len() - 1)).is_err());
    }
}
