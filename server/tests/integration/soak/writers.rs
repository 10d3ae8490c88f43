//! The soak's writers: paced unary Publish calls and one long PublishStream, every record
//! with a fresh id from the ledger, every answer settled in it (acknowledged at a position,
//! or failed: written or not, nobody knows).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{PublishRequest, publish_request, publish_result};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::ledger::{Outcome, Sent, value_of};

/// What a writer saw: acknowledged records and failures by gRPC code.
#[derive(Debug, Default)]
pub struct Tally {
    pub acked: u64,
    pub failed: BTreeMap<String, u64>,
}

impl Tally {
    fn fail(&mut self, code: tonic::Code) {
        *self.failed.entry(format!("{code:?}")).or_default() += 1;
    }
}

fn request(topic: &str, id: u64) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        key: Some(Bytes::from(format!("k{}", id % 16))),
        payload: Some(publish_request::Payload::Value(Bytes::from(value_of(id)))),
        ..Default::default()
    }
}

/// A ticker at `rate` a second that does not catch up after a stall (an outage holds calls
/// for up to a request timeout; the load then goes on at its pace, not in a burst).
fn pace(rate: f64) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Unary Publish calls, one at a time, at `rate` a second until `stop`.
pub async fn unary(
    mut client: EventGatewayClient<Channel>,
    topic: String,
    sent: Arc<Mutex<Sent>>,
    rate: f64,
    stop: CancellationToken,
) -> Tally {
    let mut tally = Tally::default();
    let mut ticks = pace(rate);
    while !stop.is_cancelled() {
        ticks.tick().await;
        let id = sent.lock().expect("not poisoned").allocate();
        let outcome = match client.publish(request(&topic, id)).await {
            Ok(response) => {
                let ack = response.into_inner();
                tally.acked += 1;
                Outcome::Acked(ack.partition, ack.offset)
            }
            Err(status) => {
                tally.fail(status.code());
                Outcome::Failed
            }
        };
        sent.lock().expect("not poisoned").settle(id, outcome);
    }
    tally
}

/// One PublishStream for the whole run at `rate` records a second; half-closed at `stop`,
/// then read to its end. Err if the stream itself failed: it must survive an outage,
/// answering each record.
pub async fn stream(
    mut client: EventGatewayClient<Channel>,
    topic: String,
    sent: Arc<Mutex<Sent>>,
    rate: f64,
    stop: CancellationToken,
) -> Result<Tally, String> {
    let (requests, requests_rx) = mpsc::channel::<PublishRequest>(64);
    let mut results = client
        .publish_stream(ReceiverStream::new(requests_rx))
        .await
        .map_err(|s| format!("PublishStream refused: {s:?}"))?
        .into_inner();
    // Ids in request order: results come back in that order.
    let in_flight = Arc::new(Mutex::new(VecDeque::<u64>::new()));
    let feeder = tokio::spawn({
        let (sent, in_flight) = (sent.clone(), in_flight.clone());
        async move {
            let mut ticks = pace(rate);
            while !stop.is_cancelled() {
                ticks.tick().await;
                let id = sent.lock().expect("not poisoned").allocate();
                in_flight.lock().expect("not poisoned").push_back(id);
                if requests.send(request(&topic, id)).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut tally = Tally::default();
    loop {
        let result = match results.message().await {
            Ok(Some(result)) => result,
            Ok(None) => break,
            Err(status) => {
                feeder.abort();
                return Err(format!("PublishStream failed: {status:?}"));
            }
        };
        let Some(id) = in_flight.lock().expect("not poisoned").pop_front() else {
            return Err(format!("a result for no record: {result:?}"));
        };
        let outcome = match result.outcome {
            Some(publish_result::Outcome::Ack(ack)) => {
                tally.acked += 1;
                Outcome::Acked(ack.partition, ack.offset)
            }
            Some(publish_result::Outcome::Error(e)) => {
                tally.fail(tonic::Code::from(e.code));
                Outcome::Failed
            }
            None => return Err(format!("a result without an outcome: {result:?}")),
        };
        sent.lock().expect("not poisoned").settle(id, outcome);
    }
    feeder.await.map_err(|e| format!("the feeder: {e}"))?;
    let unanswered = in_flight.lock().expect("not poisoned").len();
    if unanswered > 0 {
        return Err(format!(
            "the stream ended with {unanswered} records unanswered"
        ));
    }
    Ok(tally)
}
