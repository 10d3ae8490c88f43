//! Publish and PublishStream: validate a request, turn it into a Kafka record (PageEvents as
//! the seed's JSON, keyed by page name), send it through the shared producer and report
//! where the broker stored it.

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use streamgate::page_event::{self, PageEvent};
use streamgate::proto::{
    self, PublishRequest, PublishResponse, PublishResult, publish_request, publish_result,
};
use streamgate::topic::TopicName;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::State;
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::settings::Limits;
use streamgate::time::{from_millis, millis_of_std, now_millis, to_millis};

/// Records a PublishStream may have sent and not yet seen acknowledged. Bounds the memory
/// of one stream; beyond it we stop reading the client (HTTP/2 flow control pushes back).
const STREAM_IN_FLIGHT: usize = 1024;

/// The response stream of PublishStream.
pub type PublishResultStream = ReceiverStream<Result<PublishResult, Status>>;

/// A validated record, owning everything it needs to be sent.
pub struct OutgoingRecord {
    topic: TopicName,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: OwnedHeaders,
    partition: Option<i32>,
    timestamp_ms: i64,
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
        let (value, default_key, content_type) = payload(request.payload, now_ms)?;
        let key = request.key.map(|k| k.to_vec()).or(default_key);
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
        let size = key.as_ref().map_or(0, Vec::len)
            + value.len()
            + request
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.len() + HEADER_FRAMING)
                .sum::<usize>();
        if size > limits.max_message_bytes {
            return Err(GatewayError::TooLarge {
                size,
                limit: limits.max_message_bytes,
            });
        }
        Ok(Self {
            topic,
            key,
            value,
            headers: headers(&request.headers, content_type),
            partition: request.partition,
            timestamp_ms,
        })
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
        self,
        state: &State,
        deadline: Instant,
    ) -> Result<PublishResponse, GatewayError> {
        let mut record = FutureRecord::to(self.topic.as_str())
            .payload(self.value.as_slice())
            .headers(self.headers)
            .timestamp(self.timestamp_ms);
        if let Some(key) = &self.key {
            record = record.key(key.as_slice());
        }
        if let Some(partition) = self.partition {
            record = record.partition(partition);
        }
        let delivered = state
            .producer
            .send(record, deadline)
            .await
            .map_err(|e| GatewayError::from_send(e, self.topic.as_str(), &state.bootstrap))?;
        state.records.published(self.topic.as_str(), 1);
        Ok(PublishResponse {
            topic: self.topic.into_string(),
            partition: delivered.partition,
            offset: delivered.offset,
            timestamp: Some(from_millis(
                delivered
                    .log_append_time_ms
                    .filter(|_| state.trust_log_append_time)
                    .unwrap_or(self.timestamp_ms),
            )),
        })
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

/// The value, the default key (a PageEvent's page name) and the content type to add.
type Payload = (Vec<u8>, Option<Vec<u8>>, Option<&'static str>);

fn payload(
    payload: Option<publish_request::Payload>,
    now_ms: i64,
) -> Result<Payload, GatewayError> {
    match payload {
        Some(publish_request::Payload::Value(bytes)) => Ok((bytes.to_vec(), None, None)),
        Some(publish_request::Payload::PageEvent(event)) => {
            let event = complete_page_event(event, now_ms)?;
            let key = event.name.as_bytes().to_vec();
            Ok((event.to_json(), Some(key), Some(page_event::CONTENT_TYPE)))
        }
        None => Err(GatewayError::InvalidArgument(
            "payload is missing: set page_event or value".into(),
        )),
    }
}

/// The client's headers, plus `content-type` for a PageEvent unless the client set one.
fn headers(given: &[proto::Header], content_type: Option<&'static str>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(given.len() + 1);
    for header in given {
        headers = headers.insert(Header {
            key: &header.key,
            value: Some(header.value.as_ref()),
        });
    }
    let given_content_type = given
        .iter()
        .any(|h| h.key.eq_ignore_ascii_case("content-type"));
    if let Some(content_type) = content_type.filter(|_| !given_content_type) {
        headers = headers.insert(Header {
            key: "content-type",
            value: Some(content_type),
        });
    }
    headers
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

/// Runs one PublishStream: reads requests, keeps up to [`STREAM_IN_FLIGHT`] sends going,
/// and answers each in request order.
pub fn spawn_stream(
    state: std::sync::Arc<State>,
    mut requests: Streaming<PublishRequest>,
    permit: OwnedSemaphorePermit,
    principal: Principal,
) -> PublishResultStream {
    let (tx, rx) = mpsc::channel(STREAM_IN_FLIGHT);
    let on_panic = tx.clone();
    let tasks = state.tasks.clone();
    let stream = async move {
        let _permit = permit;
        let mut in_flight = FuturesOrdered::new();
        let mut sequence: u64 = 0;
        let mut input_open = true;
        // One wait for the shutdown for the whole stream, not one per record.
        let shutdown = state.shutdown.cancelled();
        tokio::pin!(shutdown);
        while input_open || !in_flight.is_empty() {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    let _ = tx.try_send(Err(GatewayError::ShuttingDown.into()));
                    break;
                }
                Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                    // This result and every one already done behind it, in order.
                    let mut ready = Some(result);
                    while let Some(result) = ready.take() {
                        let sent = match tx.try_send(Ok(result)) {
                            Ok(()) => true,
                            Err(mpsc::error::TrySendError::Closed(_)) => false,
                            // A client that stops reading must not hold the drain up.
                            Err(mpsc::error::TrySendError::Full(result)) => tokio::select! {
                                sent = tx.send(result) => sent.is_ok(),
                                _ = &mut shutdown => false,
                            },
                        };
                        if !sent {
                            return; // the client left, or the server stops
                        }
                        ready = in_flight.next().now_or_never().flatten();
                    }
                }
                next = requests.message(), if input_open && in_flight.len() < STREAM_IN_FLIGHT => match next {
                    Ok(Some(request)) => {
                        // Checked here, one at a time, so that records reach the producer
                        // in the order they came: a topic's first record may wait for the
                        // metadata, and the ones behind it must not overtake it.
                        let record = admit_record(&state, &principal, request).await;
                        let state = state.clone();
                        let seq = sequence;
                        sequence += 1;
                        in_flight.push_back(async move { publish_one(&state, record, seq).await });
                    }
                    Ok(None) => input_open = false,
                    Err(status) => {
                        let _ = tx.try_send(Err(status));
                        break;
                    }
                },
            }
        }
    };
    tasks.spawn(async move {
        // A panic must not look like a clean end of the stream to the client.
        if crate::supervisor::catch("publish stream", stream)
            .await
            .is_none()
        {
            let _ = on_panic.try_send(Err(Status::internal(
                "the stream's task failed; the server's log says why",
            )));
        }
    });
    ReceiverStream::new(rx)
}

/// A PublishStream request made a record: valid, allowed, to a topic that exists.
async fn admit_record(
    state: &State,
    principal: &Principal,
    request: PublishRequest,
) -> Result<OutgoingRecord, GatewayError> {
    let record = OutgoingRecord::from_request(request, &state.limits, now_millis())?;
    state
        .access
        .publish(principal, "PublishStream", record.topic())?;
    record
        .check_topic(state, Instant::now() + state.request_timeout)
        .await?;
    Ok(record)
}

async fn publish_one(
    state: &State,
    record: Result<OutgoingRecord, GatewayError>,
    sequence: u64,
) -> PublishResult {
    let deadline = Instant::now() + state.request_timeout;
    let outcome = match record {
        Ok(record) => record.send(state, deadline).await,
        Err(e) => Err(e),
    };
    PublishResult {
        sequence,
        outcome: Some(match outcome {
            Ok(ack) => publish_result::Outcome::Ack(ack),
            Err(e) => {
                let status = Status::from(e);
                publish_result::Outcome::Error(proto::RecordError {
                    code: status.code() as i32,
                    message: status.message().to_owned(),
                })
            }
        }),
    }
}
