//! The soak's readers: members of a Subscribe group, members of a Consume group (acking,
//! and nacking one record in ten on its first delivery), and WatchPageStats watchers. Each
//! stream lasts the whole run; one that fails or ends early fails the soak.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{
    self, AckRequest, ConsumeRequest, ConsumeStart, NackRequest, WatchPageStatsRequest,
    consume_request, consume_response, start_position, subscribe_response,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::ledger::{Deliveries, Sent, id_of};
use crate::support::subscribe_request;

/// How long a nacked record waits before it comes again.
const NACK_DELAY: Duration = Duration::from_millis(200);

/// Offsets must grow per partition on one stream, between two assignments.
#[derive(Default)]
struct Order(HashMap<i32, i64>);

impl Order {
    fn check(&mut self, partition: i32, offset: i64) -> Result<(), String> {
        match self.0.insert(partition, offset) {
            Some(last) if offset <= last => Err(format!(
                "{partition}/{offset} after {partition}/{last} on one stream, no rebalance between"
            )),
            _ => Ok(()),
        }
    }
}

impl Order {
    /// A new Assignment came: offsets start afresh, and the ledger's partitions move on an
    /// epoch.
    fn reassigned(&mut self, deliveries: &Mutex<Deliveries>, assignment: &proto::Assignment) {
        self.0.clear();
        let partitions = assignment.partitions.iter().map(|p| p.partition);
        deliveries
            .lock()
            .expect("not poisoned")
            .assigned(partitions);
    }
}

/// One member of a Subscribe group, from the earliest offset, until `stop`.
pub async fn subscriber(
    mut client: EventGatewayClient<Channel>,
    topic: String,
    group: String,
    ledger: (Arc<Mutex<Sent>>, Arc<Mutex<Deliveries>>),
    stop: CancellationToken,
) -> Result<(), String> {
    let (sent, deliveries) = ledger;
    let earliest = Some(start_position::Position::Earliest(true));
    let request = subscribe_request(&topic, Some(&group), earliest);
    let mut stream = client
        .subscribe(request)
        .await
        .map_err(|s| format!("Subscribe refused: {s:?}"))?
        .into_inner();
    let mut order = Order::default();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            message = stream.message() => message,
        };
        let records = match message.map_err(|s| format!("Subscribe failed: {s:?}"))? {
            None => return Err("Subscribe ended by itself".into()),
            Some(response) => match response.message {
                Some(subscribe_response::Message::Assignment(a)) => {
                    order.reassigned(&deliveries, &a);
                    continue;
                }
                Some(subscribe_response::Message::Records(batch)) => batch.records,
                Some(subscribe_response::Message::Record(record)) => vec![record],
                None => return Err("an empty SubscribeResponse".into()),
            },
        };
        let sent = sent.lock().expect("not poisoned");
        let mut deliveries = deliveries.lock().expect("not poisoned");
        for r in records {
            if let Err(e) = order.check(r.partition, r.offset) {
                deliveries.violation(e);
            }
            let value = r.value.as_deref().unwrap_or_default();
            deliveries.deliver(&sent, r.partition, r.offset, value, 1);
        }
    }
}

/// One member of a Consume group: acks what it gets, except that it nacks a record whose
/// id ends in 0 on its first delivery. At `stop` it half-closes and reads to the end (the
/// server commits and leaves the group before it ends the stream).
pub async fn consumer(
    mut client: EventGatewayClient<Channel>,
    topic: String,
    group: String,
    ledger: (Arc<Mutex<Sent>>, Arc<Mutex<Deliveries>>),
    stop: CancellationToken,
) -> Result<(), String> {
    let (sent, deliveries) = ledger;
    let (requests, requests_rx) = mpsc::channel(64);
    let start = ConsumeStart {
        group,
        topics: vec![topic],
        start: Some(proto::StartPosition {
            position: Some(start_position::Position::Earliest(true)),
        }),
        ack_deadline: Some(prost_types::Duration {
            seconds: 120,
            nanos: 0,
        }),
        ..Default::default()
    };
    let first = consume_request::Request::Start(start);
    requests
        .send(ConsumeRequest {
            request: Some(first),
        })
        .await
        .map_err(|_| "queue the start")?;
    let mut stream = client
        .consume(ReceiverStream::new(requests_rx))
        .await
        .map_err(|s| format!("Consume refused: {s:?}"))?
        .into_inner();
    let mut requests = Some(requests);
    let mut order = Order::default();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled(), if requests.is_some() => {
                requests = None; // half-close; the server ends the stream after its commit
                continue;
            }
            message = stream.message() => message,
        };
        let batch = match message.map_err(|s| format!("Consume failed: {s:?}"))? {
            None if requests.is_none() => return Ok(()),
            None => return Err("Consume ended by itself".into()),
            Some(response) => match response.message {
                Some(consume_response::Message::Assignment(a)) => {
                    order.reassigned(&deliveries, &a);
                    continue;
                }
                Some(consume_response::Message::Records(batch)) => batch.records,
                None => return Err("an empty ConsumeResponse".into()),
            },
        };
        let (mut acks, mut nacks) = (Vec::new(), Vec::new());
        {
            let sent = sent.lock().expect("not poisoned");
            let mut deliveries = deliveries.lock().expect("not poisoned");
            for consumed in batch {
                let Some(r) = consumed.record else {
                    deliveries.violation("a ConsumedRecord without its record".into());
                    continue;
                };
                // A nacked record comes back out of order: only first deliveries are checked.
                if consumed.delivery_attempt == 1
                    && let Err(e) = order.check(r.partition, r.offset)
                {
                    deliveries.violation(e);
                }
                let value = r.value.as_deref().unwrap_or_default();
                let attempt = consumed.delivery_attempt;
                deliveries.deliver(&sent, r.partition, r.offset, value, attempt);
                if requests.is_none() {
                    // Closing: this one is not acked, and comes to the group again.
                } else if attempt == 1 && id_of(value).is_some_and(|id| id % 10 == 0) {
                    deliveries.nacked(r.partition, r.offset);
                    nacks.push(consumed.ack_id);
                } else {
                    deliveries.acked(r.partition, r.offset);
                    acks.push(consumed.ack_id);
                }
            }
        }
        let Some(requests) = &requests else {
            continue;
        };
        let send = |request| ConsumeRequest {
            request: Some(request),
        };
        let delay = Some(prost_types::Duration::try_from(NACK_DELAY).expect("small"));
        let ack = consume_request::Request::Ack(AckRequest { ack_ids: acks });
        let nack = consume_request::Request::Nack(NackRequest {
            ack_ids: nacks,
            delay,
        });
        for request in [ack, nack] {
            if requests.send(send(request)).await.is_err() {
                return Err("Consume stopped taking requests".into());
            }
        }
    }
}

/// What one watcher saw.
#[derive(Debug, Default)]
pub struct Watch {
    pub messages: u64,
    /// When a message last counted a visit in its rolling period.
    pub last_counting: Option<Instant>,
}

/// A WatchPageStats stream with a 5 s rolling period, until `stop`.
pub async fn watcher(
    mut client: EventGatewayClient<Channel>,
    seen: Arc<Mutex<Watch>>,
    stop: CancellationToken,
) -> Result<(), String> {
    let request = WatchPageStatsRequest {
        rolling: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        final_only: false,
    };
    let mut stream = client
        .watch_page_stats(request)
        .await
        .map_err(|s| format!("WatchPageStats refused: {s:?}"))?
        .into_inner();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            message = stream.message() => message,
        };
        let Some(stats) = message.map_err(|s| format!("WatchPageStats failed: {s:?}"))? else {
            return Err("WatchPageStats ended by itself".into());
        };
        let mut seen = seen.lock().expect("not poisoned");
        seen.messages += 1;
        if stats.pages.iter().any(|p| p.rolling_count > 0) {
            seen.last_counting = Some(Instant::now());
        }
    }
}
