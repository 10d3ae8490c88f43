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
use streamgate::proto::{PublishResponse, SubscribeRequest, SubscribeResponse, subscribe_response};
use tonic::Status;

use crate::gateway;
use crate::read::{self, is_end_marker, records_of};
use crate::scan::END_KEY;

/// What a filtered read needs of one Subscribe message.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Where each partition of the topic starts.
    Assignment(Vec<(i32, i64)>),
    /// Its records, as (partition, offset, is an end marker).
    Records(Vec<(i32, i64, bool)>),
}

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
        self.subscribe_request(&read::request(topic, position, Some(records)))
    }

    /// A Subscribe request of the bench's (its topics, from earliest, its read mask, and
    /// its `max_records` and `filter` when set).
    pub fn subscribe_request(self, request: &SubscribeRequest) -> Bytes {
        match self {
            Self::Proto => request.encode_to_vec().into(),
            Self::Json => {
                // A FieldMask is one string in JSON: its paths, comma-separated, in
                // lowerCamelCase (the bench's are single words).
                let mask = request.read_mask.as_ref().map(|m| m.paths.join(","));
                let mut json = json!({
                    "topics": request.topics,
                    "start": { "earliest": true },
                    "readMask": mask,
                });
                if let Some(records) = request.max_records {
                    json["maxRecords"] = records.to_string().into();
                }
                if !request.filter.is_empty() {
                    json["filter"] = request.filter.clone().into();
                }
                json.to_string().into()
            }
        }
    }

    /// What a filtered read needs of one Subscribe message of `topic`: where its
    /// partitions start (an Assignment), or where its records are; `None` for neither.
    pub fn scanned(self, topic: &str, message: &[u8]) -> Result<Option<Scanned>, Status> {
        let bad = |e: &dyn std::fmt::Display| Status::internal(format!("a Subscribe message: {e}"));
        match self {
            Self::Proto => {
                let response = SubscribeResponse::decode(message).map_err(|e| bad(&e))?;
                Ok(match response.message {
                    Some(subscribe_response::Message::Assignment(assignment)) => {
                        Some(Scanned::Assignment(read::starts(&assignment, topic)))
                    }
                    Some(message) => Some(Scanned::Records(
                        records_of(&message)
                            .iter()
                            .map(|r| (r.partition, r.offset, is_end_marker(r.key.as_deref())))
                            .collect(),
                    )),
                    None => None,
                })
            }
            Self::Json => {
                let response: Value = serde_json::from_slice(message).map_err(|e| bad(&e))?;
                if let Some(assignment) = response.get("assignment") {
                    return Ok(Some(Scanned::Assignment(json_starts(assignment, topic))));
                }
                let records = match (response.get("records"), response.get("record")) {
                    (Some(batch), _) => batch
                        .get("records")
                        .and_then(Value::as_array)
                        .map(|records| records.iter().map(json_record).collect())
                        .unwrap_or_default(),
                    (None, Some(record)) => vec![json_record(record)],
                    (None, None) => return Ok(None),
                };
                Ok(Some(Scanned::Records(records)))
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

/// An integer of canonical proto3 JSON: a number, or a string for 64-bit ones; absent for
/// the default, 0.
pub fn json_int(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A record of canonical proto3 JSON as (partition, offset, is an end marker); its key is
/// in base64.
pub fn json_record(record: &Value) -> (i32, i64, bool) {
    let partition = i32::try_from(json_int(record.get("partition"))).unwrap_or(0);
    let offset = json_int(record.get("offset"));
    let marker = record.get("key").and_then(Value::as_str) == Some(END_KEY_BASE64.as_str());
    (partition, offset, marker)
}

/// [`END_KEY`] as canonical JSON writes the bytes of a key.
static END_KEY_BASE64: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| STANDARD.encode(END_KEY));

/// Where each partition of `topic` starts, from an Assignment in canonical JSON.
fn json_starts(assignment: &Value, topic: &str) -> Vec<(i32, i64)> {
    let partitions = assignment.get("partitions").and_then(Value::as_array);
    partitions
        .into_iter()
        .flatten()
        .filter(|p| p.get("topic").and_then(Value::as_str) == Some(topic))
        .map(|p| {
            let partition = i32::try_from(json_int(p.get("partition"))).unwrap_or(0);
            let start = match json_int(p.get("startOffset")) {
                -1 => json_int(p.get("lowWatermark")),
                start => start,
            };
            (partition, start)
        })
        .collect()
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
    fn a_filtered_request_carries_its_filter_and_no_record_count() {
        let position = streamgate::proto::start_position::Position::Earliest(true);
        let request = SubscribeRequest {
            filter: "value.duration > 100".into(),
            ..read::request("t", position, None)
        };
        let json: Value =
            serde_json::from_slice(&Codec::Json.subscribe_request(&request)).expect("JSON");
        assert_eq!(json["filter"], "value.duration > 100");
        assert!(json.get("maxRecords").is_none(), "{json}");
        let proto = Codec::Proto.subscribe_request(&request);
        let decoded = SubscribeRequest::decode(proto).expect("protobuf");
        assert_eq!(decoded, request);
    }

    #[test]
    fn a_filtered_read_finds_partitions_offsets_and_end_markers_in_either_codec() {
        let marker = STANDARD.encode(END_KEY);
        let batch = format!(
            r#"{{"records":{{"records":[{{"offset":"7","key":"UDE="}},{{"partition":2,"offset":"9","key":"{marker}"}}]}}}}"#
        );
        let scanned = Codec::Json.scanned("t", batch.as_bytes()).expect("JSON");
        assert_eq!(
            scanned,
            Some(Scanned::Records(vec![(0, 7, false), (2, 9, true)]))
        );
        let assignment = r#"{"assignment":{"partitions":[{"topic":"t","startOffset":"3"},{"topic":"t","partition":1,"startOffset":"-1","lowWatermark":"5"},{"topic":"u","partition":4}]}}"#;
        let scanned = Codec::Json
            .scanned("t", assignment.as_bytes())
            .expect("JSON");
        assert_eq!(scanned, Some(Scanned::Assignment(vec![(0, 3), (1, 5)])));
        let single = Codec::Json.scanned("t", br#"{"record":{"partition":1,"offset":"4"}}"#);
        assert_eq!(
            single.expect("JSON"),
            Some(Scanned::Records(vec![(1, 4, false)]))
        );

        let batch = SubscribeResponse {
            message: Some(subscribe_response::Message::Records(
                streamgate::record_batch::RecordBatch {
                    records: vec![
                        Record {
                            partition: 1,
                            offset: 8,
                            key: Some(Bytes::from_static(END_KEY.as_bytes())),
                            ..Default::default()
                        },
                        Record {
                            offset: 2,
                            key: Some(Bytes::from_static(b"P1")),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
            )),
        };
        let scanned = Codec::Proto
            .scanned("t", &batch.encode_to_vec())
            .expect("protobuf");
        assert_eq!(
            scanned,
            Some(Scanned::Records(vec![(1, 8, true), (0, 2, false)]))
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
