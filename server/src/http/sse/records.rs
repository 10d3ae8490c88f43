//! `GET /v1/topics/{topic}/records`: a Subscribe stream as Server-Sent Events, one event
//! per record in canonical JSON, each event's `id:` the next offset of every partition
//! read so far (`0:15,1:7,2:3`), so that a reconnect with `Last-Event-ID` resumes exactly
//! after the last event the client saw: no gap, no repeat.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use http::HeaderMap;
use prost::Message as _;
use streamgate::proto::{self, start_position::Position};
use tonic::{Code, Status};

use super::events::Event;
use super::record_json::RecordJson;
use crate::http::connect::ConnectError;

/// The topic of a records path, if `path` is one.
pub fn topic_of(path: &str) -> Option<&str> {
    let topic = path.strip_prefix("/v1/topics/")?.strip_suffix("/records")?;
    (!topic.is_empty() && !topic.contains('/')).then_some(topic)
}

/// The Subscribe request of a records stream: `from` (`earliest`, `latest`, an offset),
/// `group`, `fields` (the record's fields to send, comma-separated), `max_records` (the
/// stream ends after so many; a browser then reconnects and goes on), `filter` (a CEL
/// expression), `decode` (values as JSON in `decoded`), and the
/// `Last-Event-ID` a reconnecting browser sends (ignored with a group, which resumes from
/// its commits).
pub fn subscribe_request(
    topic: &str,
    query: &str,
    headers: &HeaderMap,
) -> Result<proto::SubscribeRequest, ConnectError> {
    let invalid = |message: String| ConnectError::new(Code::InvalidArgument, message);
    let mut request = proto::SubscribeRequest {
        topics: vec![topic.to_owned()],
        ..Default::default()
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "from" => {
                let position = match &*value {
                    "earliest" => Position::Earliest(true),
                    "latest" => Position::Latest(true),
                    offset => Position::Offset(offset.parse().map_err(|_| {
                        invalid(format!("from={offset}: earliest, latest or an offset"))
                    })?),
                };
                request.start = Some(proto::StartPosition {
                    position: Some(position),
                });
            }
            "group" => request.group = Some(value.into_owned()),
            "filter" => request.filter = value.into_owned(),
            "decode" => {
                request.decode = match &*value {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(invalid(format!("decode={other}: true or false"))),
                }
            }
            "max_records" => {
                let n = value
                    .parse()
                    .map_err(|_| invalid(format!("max_records={value}: a number of records")))?;
                request.max_records = Some(n);
            }
            "fields" => {
                let mut paths: Vec<String> = value.split(',').map(str::to_owned).collect();
                // The event ids need every record's partition and offset.
                for needed in ["partition", "offset"] {
                    if !paths.iter().any(|p| p == needed) {
                        paths.push(needed.to_owned());
                    }
                }
                request.read_mask = Some(prost_types::FieldMask { paths });
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?}: the records stream takes from, group, fields, max_records, filter and decode"
                )));
            }
        }
    }
    if request.group.is_none()
        && let Some(last) = headers.get("last-event-id")
    {
        let last = last
            .to_str()
            .map_err(|_| invalid("Last-Event-ID is not text".into()))?;
        request.resume = resume(topic, last).map_err(invalid)?;
    }
    Ok(request)
}

/// `0:15,1:7` as the offsets to resume `topic`'s partitions at.
fn resume(topic: &str, id: &str) -> Result<Vec<proto::PartitionOffset>, String> {
    id.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let parsed = part
                .split_once(':')
                .and_then(|(p, o)| Some((p.parse().ok()?, o.parse().ok()?)));
            let (partition, offset) =
                parsed.ok_or_else(|| format!("Last-Event-ID {id:?} is not partition:offset,…"))?;
            Ok(proto::PartitionOffset {
                topic: topic.to_owned(),
                partition,
                offset,
            })
        })
        .collect()
}

/// Turns Subscribe's messages into events, keeping the next offset of every partition.
///
/// Messages are decoded into the prost types and each record written as JSON by
/// [`RecordJson`], straight into the event's text: the descriptor-driven path (prost-reflect's
/// DynamicMessage and serializer) cost several times as much per record, and this is the
/// one path where that decides how fast a stream reads.
pub struct RecordEvents {
    next: BTreeMap<i32, i64>,
    json: RecordJson,
}

impl RecordEvents {
    pub fn new(mask: Option<&prost_types::FieldMask>) -> Self {
        Self {
            next: BTreeMap::new(),
            json: RecordJson::new(mask.map(|m| m.paths.as_slice())),
        }
    }

    pub fn events(&mut self, message: Bytes) -> Result<Vec<Event>, Status> {
        use proto::subscribe_response::Message;
        let response = proto::SubscribeResponse::decode(message)
            .map_err(|e| Status::internal(format!("a SubscribeResponse: {e}")))?;
        let records = match response.message {
            Some(Message::Assignment(assignment)) => {
                for start in assignment.partitions {
                    self.next
                        .entry(start.partition)
                        .or_insert(start.start_offset);
                }
                return Ok(Vec::new());
            }
            Some(Message::Records(batch)) => batch.records,
            Some(Message::Record(record)) => vec![record],
            None => Vec::new(),
        };
        let mut events = Vec::with_capacity(records.len());
        for record in &records {
            self.next
                .insert(record.partition, record.offset.saturating_add(1));
            let mut data =
                String::with_capacity(64 + record.value.as_ref().map_or(0, |v| v.len() * 4 / 3));
            self.json.write(record, &mut data);
            events.push(Event {
                id: self.id(),
                data,
            });
        }
        Ok(events)
    }

    fn id(&self) -> String {
        let mut id = String::with_capacity(self.next.len() * 12);
        for (i, (partition, offset)) in self.next.iter().enumerate() {
            if i > 0 {
                id.push(',');
            }
            let _ = write!(id, "{partition}:{offset}");
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn events() -> RecordEvents {
        RecordEvents::new(None)
    }

    fn record(partition: i32, offset: i64) -> proto::Record {
        proto::Record {
            topic: "t".into(),
            partition,
            offset,
            value: Some(Bytes::from_static(b"v")),
            ..Default::default()
        }
    }

    #[test]
    fn ids_carry_every_partition_s_next_offset() {
        let mut events = events();
        let assignment = proto::SubscribeResponse {
            message: Some(proto::subscribe_response::Message::Assignment(
                proto::Assignment {
                    partitions: (0..3)
                        .map(|p| proto::PartitionStart {
                            topic: "t".into(),
                            partition: p,
                            start_offset: 10 * i64::from(p),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            )),
        };
        assert!(
            events
                .events(assignment.encode_to_vec().into())
                .expect("decodes")
                .is_empty()
        );
        let batch = proto::SubscribeResponse {
            message: Some(proto::subscribe_response::Message::Records(
                streamgate::record_batch::RecordBatch {
                    records: vec![record(1, 10), record(2, 25)],
                    ..Default::default()
                },
            )),
        };
        let sent = events
            .events(batch.encode_to_vec().into())
            .expect("decodes");
        let ids: Vec<&str> = sent.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["0:0,1:11,2:20", "0:0,1:11,2:26"]);
        let data: serde_json::Value = serde_json::from_str(&sent[0].data).expect("JSON");
        assert_eq!(
            (&data["offset"], &data["value"]),
            (&"10".into(), &"dg==".into())
        );
    }

    /// With a read mask, a record's JSON has exactly the fields asked for — defaults
    /// (partition 0, offset 0) included, the rest (here the key) left out.
    #[test]
    fn a_masked_stream_shows_exactly_the_fields_asked_for() {
        let mask = prost_types::FieldMask {
            paths: ["value", "partition", "offset"].map(String::from).to_vec(),
        };
        let mut events = RecordEvents::new(Some(&mask));
        let mut one = record(0, 0);
        one.key = Some(Bytes::from_static(b"k"));
        let batch = proto::SubscribeResponse {
            message: Some(proto::subscribe_response::Message::Records(
                streamgate::record_batch::RecordBatch {
                    records: vec![one],
                    ..Default::default()
                },
            )),
        };
        let sent = events
            .events(batch.encode_to_vec().into())
            .expect("decodes");
        let data: serde_json::Value = serde_json::from_str(&sent[0].data).expect("JSON");
        assert_eq!(
            data,
            serde_json::json!({"partition": 0, "offset": "0", "value": "dg=="})
        );
    }

    #[test]
    fn last_event_id_becomes_resume_offsets_without_a_group() {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", "0:5,2:7".parse().expect("ascii"));
        let request =
            subscribe_request("t", "from=earliest&fields=value", &headers).expect("valid");
        let resume: Vec<(i32, i64)> = request
            .resume
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect();
        assert_eq!(resume, [(0, 5), (2, 7)]);
        let mask = request.read_mask.expect("a mask").paths;
        assert_eq!(mask, ["value", "partition", "offset"]);
        let grouped = subscribe_request("t", "group=g", &headers).expect("valid");
        assert!(
            grouped.resume.is_empty(),
            "a group resumes from its commits"
        );
        for bad in ["0:x", "zero"] {
            headers.insert("last-event-id", bad.parse().expect("ascii"));
            assert!(subscribe_request("t", "", &headers).is_err(), "{bad}");
        }
        assert!(subscribe_request("t", "from=yesterday", &HeaderMap::new()).is_err());
        assert_eq!(topic_of("/v1/topics/orders/records"), Some("orders"));
        assert_eq!(topic_of("/v1/topics//records"), None);
        assert_eq!(topic_of("/v1/topics/a/b/records"), None);
    }
}
