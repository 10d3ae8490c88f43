//! Connect's two codecs as the bench uses them: the requests it writes and what it reads
//! of the answers, in binary protobuf (the generated types, as gRPC) or in canonical proto3
//! JSON (bytes in base64, 64-bit integers as strings, lowerCamelCase names). Each side of a
//! comparison decodes what it receives, as its client would: a JSON client parses every
//! answer, a gRPC client decodes every message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use prost::Message as _;
use serde_json::{Value, json};
use streamgate::proto::{PublishResponse, SubscribeResponse};
use tonic::Status;

use crate::gateway;
use crate::read::{self, records_of};

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Binary protobuf.
    Proto,
    /// Canonical proto3 JSON.
    Json,
}

impl Codec {
    /// The content type of a unary call.
    pub fn unary_type(self) -> &'static str {
        match self {
            Self::Proto => "application/proto",
            Self::Json => "application/json",
        }
    }

    /// The content type of a streaming call.
    pub fn stream_type(self) -> &'static str {
        match self {
            Self::Proto => "application/connect+proto",
            Self::Json => "application/connect+json",
        }
    }

    /// The Publish request of a raw `value` for `topic`: the gRPC workload's request.
    pub fn publish(self, topic: &str, value: &Bytes) -> Bytes {
        match self {
            Self::Proto => gateway::request(topic, value.clone())
                .encode_to_vec()
                .into(),
            Self::Json => {
                let request = json!({ "topic": topic, "value": STANDARD.encode(value) });
                request.to_string().into()
            }
        }
    }

    /// Checks a Publish answer: a PublishResponse, with an offset in JSON (canonical JSON
    /// always writes it, default or not).
    pub fn published(self, body: &[u8]) -> Result<(), Status> {
        let bad = |e: &dyn std::fmt::Display| Status::internal(format!("a Publish answer: {e}"));
        match self {
            Self::Proto => PublishResponse::decode(body).map(drop).map_err(|e| bad(&e)),
            Self::Json => match serde_json::from_slice::<Value>(body) {
                Ok(answer) if answer.get("offset").is_some() => Ok(()),
                Ok(answer) => Err(bad(&format!("no offset in {answer}"))),
                Err(e) => Err(bad(&e)),
            },
        }
    }

    /// The Subscribe request of the subscribe workload: `records` records of `topic` from
    /// the earliest offset, the fields the gRPC workload asks for ([`read::request`]).
    pub fn subscribe(self, topic: &str, records: u64) -> Bytes {
        let position = streamgate::proto::start_position::Position::Earliest(true);
        let request = read::request(topic, position, Some(records));
        match self {
            Self::Proto => request.encode_to_vec().into(),
            Self::Json => {
                // A FieldMask is one string in JSON: its paths, comma-separated, in
                // lowerCamelCase (the bench's are single words).
                let mask = request.read_mask.map(|m| m.paths.join(","));
                let request = json!({
                    "topics": request.topics,
                    "start": { "earliest": true },
                    "maxRecords": records.to_string(),
                    "readMask": mask,
                });
                request.to_string().into()
            }
        }
    }

    /// The records one Subscribe message carries (none in an Assignment).
    pub fn records_in(self, message: &[u8]) -> Result<u64, Status> {
        let bad = |e: &dyn std::fmt::Display| Status::internal(format!("a Subscribe message: {e}"));
        match self {
            Self::Proto => {
                let response = SubscribeResponse::decode(message).map_err(|e| bad(&e))?;
                Ok(response
                    .message
                    .as_ref()
                    .map_or(0, |m| records_of(m).len() as u64))
            }
            Self::Json => {
                let response: Value = serde_json::from_slice(message).map_err(|e| bad(&e))?;
                let batch = response
                    .get("records")
                    .and_then(|batch| batch.get("records"))
                    .and_then(Value::as_array);
                Ok(match batch {
                    Some(records) => records.len() as u64,
                    None => u64::from(response.get("record").is_some()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use streamgate::proto::{Record, subscribe_response};

    use super::*;

    #[test]
    fn json_requests_are_canonical_proto3_json() {
        let publish = Codec::Json.publish("bench", &Bytes::from_static(b"xx"));
        let publish: Value = serde_json::from_slice(&publish).expect("JSON");
        assert_eq!(publish, json!({ "topic": "bench", "value": "eHg=" }));

        let subscribe: Value =
            serde_json::from_slice(&Codec::Json.subscribe("t", 5)).expect("JSON");
        assert_eq!(subscribe["start"], json!({ "earliest": true }));
        assert_eq!(subscribe["maxRecords"], "5");
        assert_eq!(
            subscribe["readMask"],
            "topic,partition,offset,timestamp,key,value"
        );
    }

    #[test]
    fn records_are_counted_in_a_batch_a_single_record_and_an_assignment() {
        let json = |text: &str| Codec::Json.records_in(text.as_bytes()).expect("JSON");
        assert_eq!(json(r#"{"records":{"records":[{},{},{}]}}"#), 3);
        assert_eq!(json(r#"{"record":{"offset":"1"}}"#), 1);
        assert_eq!(json(r#"{"assignment":{"partitions":[]}}"#), 0);
        assert!(Codec::Json.records_in(b"{").is_err());

        let batch = SubscribeResponse {
            message: Some(subscribe_response::Message::Records(
                streamgate::record_batch::RecordBatch {
                    records: vec![Record::default(), Record::default()],
                    ..Default::default()
                },
            )),
        };
        let proto = Codec::Proto.records_in(&batch.encode_to_vec());
        assert_eq!(proto.expect("protobuf"), 2);
    }

    #[test]
    fn a_json_publish_answer_needs_its_offset() {
        let answer =
            br#"{"topic":"t","partition":0,"offset":"0","timestamp":"1970-01-01T00:00:00Z"}"#;
        assert!(Codec::Json.published(answer).is_ok());
        assert!(Codec::Json.published(b"{}").is_err());
        assert!(Codec::Proto.published(&[0xff]).is_err());
        let proto = PublishResponse::default().encode_to_vec();
        assert!(Codec::Proto.published(&proto).is_ok());
    }
}
