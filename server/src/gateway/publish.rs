//! Publish and PublishStream: validate a request, turn it into a Kafka record (PageEvents as
//! the seed's JSON, keyed by page name), send it through the shared producer and report
//! where the broker stored it.

use bytes::Bytes;
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use streamgate::page_event::{self, PageEvent};
use streamgate::proto::{self, PublishRequest, PublishResponse, publish_request};
use streamgate::topic::TopicName;
use tokio::time::Instant;

use super::State;
use crate::gateway::error::GatewayError;
use crate::gateway::select::decoded::from_proto;
use crate::kafka::Delivered;
use crate::schema::Schemas;
use crate::settings::Limits;
use streamgate::time::{from_millis, millis_of_std, to_millis};

/// A validated record, owning everything it needs to be sent.
pub struct OutgoingRecord {
    topic: TopicName,
    /// The request's bytes as decoded, not copied: librdkafka copies them once, on send.
    key: Option<Bytes>,
    value: Bytes,
    /// `None` without headers: librdkafka's empty header list would still cost an
    /// allocation and a copy per record.
    headers: Option<OwnedHeaders>,
    partition: Option<i32>,
    timestamp_ms: i64,
    /// Key + value + headers, as `--max-message-bytes` counts them.
    size: usize,
    /// A value given as JSON, encoded by [`typed`](Self::typed) once the caller may write
    /// to the topic (its schema's answer is for those who may).
    json: Option<serde_json::Value>,
    /// Whether the client set a content-type header.
    content_type_given: bool,
}

impl OutgoingRecord {
    /// Checks a request against `limits` and builds the record; fills a PageEvent's missing
    /// fields like the seed. `now_ms` is the server's clock, for the timestamp limit.
    pub fn from_request(
        request: PublishRequest,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<Self, GatewayError> {
        let topic = TopicName::new(request.topic)?;
        if let Some(partition) = request.partition
            && partition < 0
        {
            return Err(GatewayError::InvalidArgument(format!(
                "partition must be 0 or more, got {partition}"
            )));
        }
        let timestamp_ms = timestamp(request.timestamp, limits, now_ms)?;
        let (value, default_key, content_type, json) = payload(request.payload, now_ms)?;
        let key = request.key.or(default_key);
        if request.headers.len() > limits.max_headers {
            return Err(GatewayError::OverLimit {
                what: "headers in a record",
                count: request.headers.len(),
                limit: limits.max_headers,
                flag: "--max-headers",
            });
        }
        // Each header costs its framing too (two varint lengths), so that many empty
        // headers cannot slip under the size limit.
        let size = key.as_ref().map_or(0, Bytes::len)
            + value.len()
            + request
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.len() + HEADER_FRAMING)
                .sum::<usize>();
        let content_type_given = request
            .headers
            .iter()
            .any(|h| h.key.eq_ignore_ascii_case("content-type"));
        let record = Self {
            topic,
            key,
            value,
            headers: headers(&request.headers, content_type),
            partition: request.partition,
            timestamp_ms,
            size,
            json,
            content_type_given,
        };
        record.check_size(limits)?;
        Ok(record)
    }

    fn check_size(&self, limits: &Limits) -> Result<(), GatewayError> {
        if self.size > limits.max_message_bytes {
            return Err(GatewayError::TooLarge {
                size: self.size,
                limit: limits.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Checks the value against its topic's schema in `schemas`, and encodes a value given
    /// as JSON to the topic's format (compact JSON on a topic without a schema). A value the
    /// schema refuses is INVALID_ARGUMENT naming the first violations.
    pub fn typed(mut self, schemas: &Schemas, limits: &Limits) -> Result<Self, GatewayError> {
        let schema = schemas.for_topic(self.topic.as_str());
        let topic = self.topic.as_str().to_owned();
        let refused = |v: crate::schema::Violations| {
            GatewayError::InvalidArgument(v.in_topic(&topic).to_string())
        };
        let Some(json) = self.json.take() else {
            if let Some(schema) = schema {
                schema.validate(&self.value).map_err(refused)?;
            }
            return Ok(self);
        };
        let (value, content_type) = match &schema {
            Some(schema) => (
                schema.encode_json(&json).map_err(refused)?,
                schema.content_type(),
            ),
            None => (
                serde_json::to_vec(&json).map_err(|e| {
                    GatewayError::InvalidArgument(format!("json cannot be written: {e}"))
                })?,
                "application/json",
            ),
        };
        self.size = self.size - self.value.len() + value.len();
        self.value = Bytes::from(value);
        if !self.content_type_given {
            let headers = self.headers.take().unwrap_or_default();
            self.headers = Some(headers.insert(Header {
                key: "content-type",
                value: Some(content_type),
            }));
            self.size += "content-type".len() + content_type.len() + HEADER_FRAMING;
        }
        self.check_size(limits)?;
        Ok(self)
    }

    /// Its size: key + value + headers, with the headers' framing.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The topic it goes to.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// NOT_FOUND unless the topic exists (or the server may create it). Call it before
    /// [`send`](Self::send), in the order records must be written: it may wait for the
    /// cluster's metadata.
    pub async fn check_topic(&self, state: &State, deadline: Instant) -> Result<(), GatewayError> {
        if state.auto_create_topics {
            return Ok(());
        }
        let budget = deadline.saturating_duration_since(Instant::now());
        state
            .known_topics
            .check(&state.admin, self.topic.as_str(), budget)
            .await
    }

    /// Sends the record and waits for the broker's acknowledgement until `deadline`.
    pub async fn send(
        mut self,
        state: &State,
        deadline: Instant,
    ) -> Result<PublishResponse, GatewayError> {
        let delivered = state
            .producer
            .send(self.kafka_record(), deadline)
            .await
            .map_err(|e| GatewayError::from_send(e, self.topic.as_str(), &state.bootstrap))?;
        state.records.published(self.topic.as_str(), 1);
        Ok(acknowledgement(
            state,
            self.topic.into_string(),
            self.timestamp_ms,
            delivered,
        ))
    }

    /// The record as librdkafka takes it. The headers move into it: after a refusal that
    /// gives the record back, [`keep_headers`](Self::keep_headers) returns them.
    pub fn kafka_record(&mut self) -> FutureRecord<'_, [u8], [u8]> {
        FutureRecord {
            topic: self.topic.as_str(),
            partition: self.partition,
            payload: Some(&self.value[..]),
            key: self.key.as_deref(),
            timestamp: Some(self.timestamp_ms),
            headers: self.headers.take(),
        }
    }

    /// Takes back the headers of a record librdkafka refused.
    pub fn keep_headers(&mut self, headers: Option<OwnedHeaders>) {
        self.headers = headers;
    }

    /// The topic and timestamp an acknowledgement reports, once the rest is dropped.
    pub fn into_topic_and_timestamp(self) -> (TopicName, i64) {
        (self.topic, self.timestamp_ms)
    }
}

/// What a client is told about a record the broker stored: its CreateTime, or the broker's
/// LogAppendTime when the topic uses it and the server trusts it.
pub fn acknowledgement(
    state: &State,
    topic: String,
    timestamp_ms: i64,
    delivered: Delivered,
) -> PublishResponse {
    PublishResponse {
        topic,
        partition: delivered.partition,
        offset: delivered.offset,
        timestamp: Some(from_millis(
            delivered
                .log_append_time_ms
                .filter(|_| state.trust_log_append_time)
                .unwrap_or(timestamp_ms),
        )),
    }
}

/// Bytes counted per header on top of its key and value: two varint lengths, as Kafka
/// frames them (at most 5 bytes each; 2 is what small headers cost).
const HEADER_FRAMING: usize = 2;

/// The record's timestamp: the client's, if it is a valid instant after 1970 and at most
/// `--max-timestamp-ahead` ahead of the server's clock (as Kafka 4's brokers refuse records
/// beyond `log.message.timestamp.after.max.ms`), else now.
fn timestamp(
    requested: Option<prost_types::Timestamp>,
    limits: &Limits,
    now_ms: i64,
) -> Result<i64, GatewayError> {
    let Some(ts) = requested else {
        return Ok(now_ms);
    };
    let ms = to_millis(&ts).filter(|ms| *ms >= 0).ok_or_else(|| {
        GatewayError::InvalidArgument("timestamp must be a valid instant after 1970".into())
    })?;
    let limit_ms = millis_of_std(limits.max_timestamp_ahead);
    if ms.saturating_sub(now_ms) > limit_ms {
        return Err(GatewayError::InvalidArgument(format!(
            "timestamp {} is more than {} ahead of the server's clock (--max-timestamp-ahead)",
            page_event::format_date(ms),
            humantime::format_duration(limits.max_timestamp_ahead)
        )));
    }
    Ok(ms)
}

/// The value, the default key (a PageEvent's page name), the content type to add, and a
/// value given as JSON (to be encoded by the topic's schema; `value` is empty until then).
type Payload = (
    Bytes,
    Option<Bytes>,
    Option<&'static str>,
    Option<serde_json::Value>,
);

fn payload(
    payload: Option<publish_request::Payload>,
    now_ms: i64,
) -> Result<Payload, GatewayError> {
    match payload {
        Some(publish_request::Payload::Value(bytes)) => Ok((bytes, None, None, None)),
        Some(publish_request::Payload::PageEvent(event)) => {
            let event = complete_page_event(event, now_ms)?;
            let key = Bytes::copy_from_slice(event.name.as_bytes());
            Ok((
                event.to_json().into(),
                Some(key),
                Some(page_event::CONTENT_TYPE),
                None,
            ))
        }
        Some(publish_request::Payload::Json(json)) => {
            Ok((Bytes::new(), None, None, Some(from_proto(json))))
        }
        None => Err(GatewayError::InvalidArgument(
            "payload is missing: set page_event, value or json".into(),
        )),
    }
}

/// The client's headers, plus `content-type` for a PageEvent unless the client set one;
/// `None` when that makes none.
fn headers(given: &[proto::Header], content_type: Option<&'static str>) -> Option<OwnedHeaders> {
    let given_content_type = given
        .iter()
        .any(|h| h.key.eq_ignore_ascii_case("content-type"));
    let content_type = content_type.filter(|_| !given_content_type);
    if given.is_empty() && content_type.is_none() {
        return None;
    }
    let mut headers = OwnedHeaders::new_with_capacity(given.len() + 1);
    for header in given {
        headers = headers.insert(Header {
            key: &header.key,
            value: Some(header.value.as_ref()),
        });
    }
    if let Some(content_type) = content_type {
        headers = headers.insert(Header {
            key: "content-type",
            value: Some(content_type),
        });
    }
    Some(headers)
}

/// Fills what the caller left out, exactly as the seed's REST endpoint does.
fn complete_page_event(
    event: proto::PageEvent,
    now_ms: i64,
) -> Result<PageEvent<'static>, GatewayError> {
    if event.name.is_empty() {
        return Err(GatewayError::InvalidArgument(
            "page_event.name is required (the page visited, e.g. \"P1\")".into(),
        ));
    }
    let mut rng = rand::rng();
    let date_ms = match event.date {
        Some(date) => to_millis(&date).ok_or_else(|| {
            GatewayError::InvalidArgument("page_event.date is not a valid instant".into())
        })?,
        None => now_ms,
    };
    let duration_ms = match event.duration_ms {
        Some(d) if d < 0 => {
            return Err(GatewayError::InvalidArgument(format!(
                "page_event.duration_ms must be 0 or more, got {d}"
            )));
        }
        Some(d) => d,
        None => rng.random_range(0..9000),
    };
    let user = event
        .user
        .unwrap_or_else(|| if rng.random_bool(0.5) { "U1" } else { "U2" }.to_owned());
    Ok(PageEvent {
        name: event.name.into(),
        user: user.into(),
        date_ms,
        duration_ms,
    })
}
