//! PublishStream: reads records in request order, hands each to the shared producer as soon
//! as it is admitted (librdkafka batches them with everyone else's), and answers each in
//! request order once the broker acknowledged it.
//!
//! Shaped for many records per second on one stream. Answers go out in request order, so
//! only the oldest record's acknowledgement is awaited: when it comes, the ones behind it
//! that are already in are collected in the same turn, without a wake-up each. One timer
//! guards the oldest record's deadline instead of one per record, and requests that arrive
//! together are admitted together (one clock read for all of them).

use std::collections::VecDeque;
use std::sync::Arc;

use futures::FutureExt;
use rdkafka::error::KafkaError;
use rdkafka::producer::DeliveryFuture;
use rdkafka::types::RDKafkaErrorCode;
use streamgate::proto::{self, PublishRequest, PublishResult, publish_result};
use streamgate::time::now_millis;
use streamgate::topic::TopicName;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::State;
use super::publish::{OutgoingRecord, acknowledgement};
use crate::admission::Permit;
use crate::auth::Principal;
use crate::gateway::error::{GatewayError, request_error};
use crate::kafka::producer::{Refused, SendError, delivered};

/// Records a PublishStream may have sent and not yet seen acknowledged. Bounds the memory
/// of one stream; beyond it we stop reading the client (HTTP/2 flow control pushes back).
pub const STREAM_IN_FLIGHT: usize = 1024;

/// How soon a record the producer's queue had no room for is offered again.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(10);

/// The response stream of PublishStream.
pub type PublishResultStream = ReceiverStream<Result<PublishResult, Status>>;

/// Runs one PublishStream on the server's task tracker; its results are the returned stream.
pub fn spawn_stream(
    state: Arc<State>,
    requests: Streaming<PublishRequest>,
    permit: Permit,
    principal: Principal,
) -> PublishResultStream {
    let (tx, rx) = mpsc::channel(STREAM_IN_FLIGHT);
    let on_panic = tx.clone();
    let tasks = state.tasks.clone();
    let stream = PublishStream {
        state,
        principal,
        tx,
        in_flight: VecDeque::new(),
        blocked: None,
        next_sequence: 0,
    };
    tasks.spawn(async move {
        let _permit = permit;
        // A panic must not look like a clean end of the stream to the client.
        if crate::supervisor::catch("publish stream", stream.run(requests))
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

/// One record of the stream, from its admission to its answer.
struct InFlight {
    sequence: u64,
    /// Past it the record is answered DEADLINE-style (UNAVAILABLE, "may still be written").
    deadline: Instant,
    progress: Progress,
}

enum Progress {
    /// With librdkafka; the broker's answer comes through `delivery`.
    Sending {
        delivery: DeliveryFuture,
        topic: TopicName,
        timestamp_ms: i64,
    },
    /// Answered already: refused before it was sent, or failed.
    Answered(publish_result::Outcome),
}

/// A record admitted and not yet taken by librdkafka.
struct Admitted {
    sequence: u64,
    deadline: Instant,
    record: OutgoingRecord,
}

/// The client's side of the stream after a read.
enum Input {
    Open,
    /// The client half-closed: answer what is in flight, then end.
    Closed,
    /// The request stream failed (a malformed or oversized message, a reset).
    Failed(Status),
}

/// Whether the stream goes on after a step.
enum Step {
    Continue,
    /// The client left, the server stops, or the request stream failed.
    Stop,
}

struct PublishStream {
    state: Arc<State>,
    principal: Principal,
    tx: mpsc::Sender<Result<PublishResult, Status>>,
    /// In request order; the front is the oldest unanswered record.
    in_flight: VecDeque<InFlight>,
    /// A record the producer's queue had no room for: nothing behind it is read until it is
    /// in, so that records reach the producer in the order they came.
    blocked: Option<Admitted>,
    next_sequence: u64,
}

impl PublishStream {
    async fn run(mut self, mut requests: Streaming<PublishRequest>) {
        let state = self.state.clone();
        // One wait for the shutdown for the whole stream, not one per record.
        let shutdown = state.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut input_open = true;
        while input_open || !self.in_flight.is_empty() || self.blocked.is_some() {
            let blocked = self.blocked.is_some();
            let room = !blocked && self.in_flight.len() < STREAM_IN_FLIGHT;
            let oldest = self.oldest_sending();
            let step = tokio::select! {
                biased;
                _ = &mut shutdown => {
                    let _ = self.tx.try_send(Err(GatewayError::ShuttingDown.into()));
                    Step::Stop
                }
                outcome = wait_for(oldest) => {
                    self.settle_front(outcome);
                    self.answer_ready(&mut shutdown).await
                }
                _ = tokio::time::sleep(QUEUE_FULL_RETRY), if blocked => {
                    self.retry_blocked();
                    self.answer_ready(&mut shutdown).await
                }
                next = requests.message(), if input_open && room => {
                    let input = match next {
                        Ok(Some(request)) => self.admit_ready(request, &mut requests).await,
                        Ok(None) => Input::Closed,
                        Err(status) => Input::Failed(request_error(status)),
                    };
                    match input {
                        Input::Open => self.answer_ready(&mut shutdown).await,
                        Input::Closed => {
                            input_open = false;
                            self.answer_ready(&mut shutdown).await
                        }
                        Input::Failed(status) => {
                            let _ = self.tx.try_send(Err(status));
                            Step::Stop
                        }
                    }
                }
            };
            if let Step::Stop = step {
                return;
            }
        }
    }

    /// The oldest record's delivery and deadline, if it is still with librdkafka.
    fn oldest_sending(&mut self) -> Option<(&mut DeliveryFuture, Instant)> {
        match self.in_flight.front_mut() {
            Some(InFlight {
                deadline,
                progress: Progress::Sending { delivery, .. },
                ..
            }) => Some((delivery, *deadline)),
            _ => None,
        }
    }

    /// Admits `first` and every request already received behind it, up to the in-flight
    /// bound; says whether the client's side is still open.
    async fn admit_ready(
        &mut self,
        first: PublishRequest,
        requests: &mut Streaming<PublishRequest>,
    ) -> Input {
        let now_ms = now_millis();
        let admitted_at = Instant::now();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            self.admit(request, now_ms, admitted_at).await;
            if self.blocked.is_some() || self.in_flight.len() >= STREAM_IN_FLIGHT {
                break;
            }
            match requests.message().now_or_never() {
                Some(Ok(Some(request))) => next = Some(request),
                Some(Ok(None)) => return Input::Closed,
                // tonic yields a stream's error once: it must be reported from here.
                Some(Err(status)) => return Input::Failed(request_error(status)),
                None => break,
            }
        }
        Input::Open
    }

    /// Validates one request and hands its record to the producer, or answers its refusal.
    async fn admit(&mut self, request: PublishRequest, now_ms: i64, admitted_at: Instant) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let deadline = admitted_at + self.state.request_timeout;
        match self.validate(request, now_ms).await {
            Ok(record) => self.enqueue(Admitted {
                sequence,
                deadline,
                record,
            }),
            Err(e) => self.in_flight.push_back(InFlight {
                sequence,
                deadline,
                progress: Progress::Answered(refusal(e)),
            }),
        }
    }

    /// A request made a record: valid, allowed, to a topic that exists. Checked one at a
    /// time, in order: a topic's first record may wait for the metadata, and the ones
    /// behind it must not overtake it.
    async fn validate(
        &self,
        request: PublishRequest,
        now_ms: i64,
    ) -> Result<OutgoingRecord, GatewayError> {
        let state = &self.state;
        let record = OutgoingRecord::from_request(request, &state.limits, now_ms)?;
        state
            .access
            .publish(&self.principal, "PublishStream", record.topic())?;
        let record = record.typed(&state.schemas.current(), &state.limits)?;
        state.quotas.publish(&self.principal, record.size())?;
        record
            .check_topic(state, Instant::now() + state.request_timeout)
            .await?;
        Ok(record)
    }

    /// Hands a record to librdkafka; a full queue blocks the stream until there is room.
    fn enqueue(&mut self, mut admitted: Admitted) {
        let outcome = self.state.producer.enqueue(admitted.record.kafka_record());
        let progress = match outcome {
            Ok(delivery) => {
                let (topic, timestamp_ms) = admitted.record.into_topic_and_timestamp();
                Progress::Sending {
                    delivery,
                    topic,
                    timestamp_ms,
                }
            }
            Err(Refused {
                error: KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                headers,
            }) if Instant::now() < admitted.deadline => {
                admitted.record.keep_headers(headers);
                self.blocked = Some(admitted);
                return;
            }
            Err(refused) => Progress::Answered(failure_of(
                &self.state,
                SendError::Kafka(refused.error),
                admitted.record.topic(),
            )),
        };
        self.in_flight.push_back(InFlight {
            sequence: admitted.sequence,
            deadline: admitted.deadline,
            progress,
        });
    }

    fn retry_blocked(&mut self) {
        if let Some(blocked) = self.blocked.take() {
            self.enqueue(blocked);
        }
    }

    /// Records what the oldest record came to: its acknowledgement or failure, or, with
    /// `None`, its deadline passed first (the record may still be written).
    fn settle_front(&mut self, outcome: Option<Result<crate::kafka::Delivered, SendError>>) {
        let Some(front) = self.in_flight.front_mut() else {
            return;
        };
        let Progress::Sending {
            topic,
            timestamp_ms,
            ..
        } = &front.progress
        else {
            return;
        };
        let outcome = match outcome {
            Some(result) => result,
            None => Err(SendError::Timeout(self.state.request_timeout)),
        };
        let answer = match outcome {
            Ok(delivered) => {
                self.state.records.published(topic.as_str(), 1);
                publish_result::Outcome::Ack(acknowledgement(
                    &self.state,
                    topic.as_str().to_owned(),
                    *timestamp_ms,
                    delivered,
                ))
            }
            Err(e) => failure_of(&self.state, e, topic.as_str()),
        };
        front.progress = Progress::Answered(answer);
    }

    /// The oldest record, if it is answered.
    fn pop_answered(&mut self) -> Option<InFlight> {
        let front = self.in_flight.front()?;
        matches!(front.progress, Progress::Answered(_))
            .then(|| self.in_flight.pop_front())
            .flatten()
    }

    /// Sends the answers at the front, in order: those settled and those whose delivery is
    /// already in. Waits only when the client is slow to read.
    async fn answer_ready(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> Step {
        loop {
            if let Some((delivery, _)) = self.oldest_sending() {
                match delivery.now_or_never() {
                    Some(result) => self.settle_front(Some(delivered(result))),
                    None => return Step::Continue,
                }
            }
            let Some(InFlight {
                sequence,
                progress: Progress::Answered(outcome),
                ..
            }) = self.pop_answered()
            else {
                return Step::Continue;
            };
            let result = PublishResult {
                sequence,
                outcome: Some(outcome),
            };
            let sent = match self.tx.try_send(Ok(result)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                // A client that stops reading must not hold the drain up.
                Err(mpsc::error::TrySendError::Full(result)) => tokio::select! {
                    sent = self.tx.send(result) => sent.is_ok(),
                    _ = &mut *shutdown => false,
                },
            };
            if !sent {
                return Step::Stop;
            }
        }
    }
}

/// Waits for a delivery, at most until its deadline (then `None`); never resolves without
/// one, so that `select!` can always poll it.
async fn wait_for(
    oldest: Option<(&mut DeliveryFuture, Instant)>,
) -> Option<Result<crate::kafka::Delivered, SendError>> {
    match oldest {
        Some((delivery, deadline)) => tokio::time::timeout_at(deadline, delivery)
            .await
            .ok()
            .map(delivered),
        None => std::future::pending().await,
    }
}

fn failure_of(state: &State, error: SendError, topic: &str) -> publish_result::Outcome {
    refusal(GatewayError::from_send(error, topic, &state.bootstrap))
}

/// A record's error result: the gRPC code and message a unary Publish would have failed with.
fn refusal(error: GatewayError) -> publish_result::Outcome {
    let status = Status::from(error);
    publish_result::Outcome::Error(proto::RecordError {
        code: status.code() as i32,
        message: status.message().to_owned(),
    })
}
