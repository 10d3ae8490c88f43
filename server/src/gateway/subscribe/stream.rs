//! The response stream of Subscribe. The session hands it records in batches (every record
//! librdkafka had ready, within bounds); each time the transport asks for a message it gets
//! every batch that is waiting, merged up to the bounds, as one `RecordBatch` — never
//! waiting for more — so a busy stream pays the per-message cost of gRPC once per batch, and
//! a quiet one still gets each record at once.
//!
//! It stores the records' offsets for the group commit at the moment tonic takes the batch
//! to write it to the client — never earlier — which is what makes group subscriptions
//! at-least-once.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::Stream;
use rdkafka::consumer::Consumer;
use streamgate::proto::{self, RecordBatch, SubscribeResponse, subscribe_response};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tonic::Status;

use super::consumer::SubscriptionConsumer;
use crate::metrics::RecordMetrics;

/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;

/// Most bytes (as [`super::record::cost`] counts them) in one batch, unless its only record
/// is larger: well under the 4 MiB a gRPC client takes by default.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// What the session hands to the response stream.
pub enum Item {
    /// Records in delivery order.
    Records(Delivery),
    /// A message that is not a record (an Assignment).
    Message(SubscribeResponse),
    /// Fires once every item before it has been taken by the transport.
    Barrier(oneshot::Sender<()>),
    /// End the stream with this status.
    Error(Status),
}

/// Records on their way to the client, with what taking them settles.
#[derive(Default)]
pub struct Delivery {
    /// The records, in order.
    pub records: Vec<proto::Record>,
    /// The offset to store per partition once they are taken: the highest of each.
    pub positions: Vec<RecordPosition>,
    /// Their cost, as [`super::record::cost`] counts it.
    pub bytes: usize,
    /// Their share of the subscription's buffer, released when the transport takes them.
    pub budget: Vec<OwnedSemaphorePermit>,
}

impl Delivery {
    /// Adds a record read from `position` that costs `cost` bytes.
    pub fn push(&mut self, record: proto::Record, position: RecordPosition, cost: usize) {
        self.records.push(record);
        self.bytes += cost;
        self.note(position);
    }

    /// Whether another record of `cost` bytes stays within the batch bounds.
    pub fn has_room(&self, cost: usize, max_records: usize) -> bool {
        self.records.is_empty()
            || (self.records.len() < max_records && self.bytes + cost <= MAX_BATCH_BYTES)
    }

    /// Appends `other`, which was read after this one.
    fn append(&mut self, mut other: Delivery) {
        self.records.append(&mut other.records);
        self.bytes += other.bytes;
        self.budget.append(&mut other.budget);
        for position in other.positions {
            self.note(position);
        }
    }

    /// Keeps `position` as its partition's offset to store: records of one partition come
    /// in offset order, so the last one is the highest.
    fn note(&mut self, position: RecordPosition) {
        match self
            .positions
            .iter_mut()
            .find(|p| p.partition == position.partition && p.topic == position.topic)
        {
            Some(known) => known.offset = position.offset,
            None => self.positions.push(position),
        }
    }
}

/// Topic, partition and offset of a delivered record.
pub struct RecordPosition {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The stream type of the Subscribe RPC.
pub struct SubscribeStream {
    items: mpsc::Receiver<Item>,
    /// Set for group subscriptions: where delivered offsets are stored. Weak, so that the
    /// session alone decides when the consumer closes (and leaves the group).
    consumer: Option<Weak<SubscriptionConsumer>>,
    /// An item that ended the last batch, to be sent next.
    held: Option<Item>,
    /// Counts the records handed over.
    metrics: RecordMetrics,
}

impl SubscribeStream {
    /// Wraps the receiving side of a subscription's channel.
    pub fn new(
        items: mpsc::Receiver<Item>,
        consumer: Option<&Arc<SubscriptionConsumer>>,
        metrics: RecordMetrics,
    ) -> Self {
        Self {
            items,
            consumer: consumer.map(Arc::downgrade),
            held: None,
            metrics,
        }
    }

    fn next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        match self.held.take() {
            Some(item) => Poll::Ready(Some(item)),
            None => self.items.poll_recv(cx),
        }
    }

    /// A batch of `first` plus every delivery already waiting that fits within the bounds.
    /// The first item that is not records, or does not fit, waits in `held`.
    fn batch(&mut self, mut delivery: Delivery) -> SubscribeResponse {
        loop {
            // `try_recv`, not `poll_recv`: taking what is already there must not spend the
            // task's cooperative budget, which would cut batches short.
            match self.items.try_recv() {
                Ok(Item::Records(more))
                    if delivery.records.len() + more.records.len() <= MAX_BATCH_RECORDS
                        && delivery.bytes + more.bytes <= MAX_BATCH_BYTES =>
                {
                    delivery.append(more);
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                // Nothing more is ready, or the channel closed: send what we have.
                Err(_) => break,
            }
        }
        self.store(&delivery.positions);
        self.metrics
            .delivered_each(delivery.records.iter().map(|r| r.topic.as_str()));
        // The budget is released here, as the transport takes the records.
        SubscribeResponse {
            message: Some(subscribe_response::Message::Records(RecordBatch {
                records: delivery.records,
            })),
        }
    }

    /// Stores the offsets of records being handed over, for a group stream.
    fn store(&self, positions: &[RecordPosition]) {
        let Some(consumer) = self.consumer.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        for position in positions {
            // Fails only if the partition was revoked meanwhile; the new owner then
            // re-delivers the record, which at-least-once allows.
            let _ = consumer.store_offset(&position.topic, position.partition, position.offset);
        }
    }
}

impl Stream for SubscribeStream {
    type Item = Result<SubscribeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.next_item(cx) {
                Poll::Ready(Some(Item::Records(delivery))) => {
                    Poll::Ready(Some(Ok(self.batch(delivery))))
                }
                Poll::Ready(Some(Item::Message(message))) => Poll::Ready(Some(Ok(message))),
                Poll::Ready(Some(Item::Barrier(done))) => {
                    let _ = done.send(());
                    continue;
                }
                Poll::Ready(Some(Item::Error(status))) => Poll::Ready(Some(Err(status))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn record(offset: i64, value_bytes: usize) -> Item {
        let record = proto::Record {
            topic: "t".into(),
            offset,
            value: Some(vec![b'x'; value_bytes].into()),
            ..Default::default()
        };
        let position = RecordPosition {
            topic: Arc::from("t"),
            partition: 0,
            offset,
        };
        let mut delivery = Delivery::default();
        delivery.push(record, position, value_bytes);
        Item::Records(delivery)
    }

    /// What the stream yields, as (assignment?, offsets of the batch).
    async fn next(stream: &mut SubscribeStream) -> Option<Vec<i64>> {
        match stream.next().await?.expect("no error").message? {
            subscribe_response::Message::Records(batch) => {
                Some(batch.records.iter().map(|r| r.offset).collect())
            }
            _ => Some(Vec::new()), // an assignment
        }
    }

    #[tokio::test]
    async fn batches_what_is_ready_up_to_the_bounds_and_keeps_other_items_in_order() {
        let (tx, rx) = mpsc::channel(4096);
        let mut stream = SubscribeStream::new(rx, None, RecordMetrics::new(10));
        for offset in 0..3 {
            tx.send(record(offset, 10)).await.expect("send");
        }
        let assignment = SubscribeResponse {
            message: Some(subscribe_response::Message::Assignment(
                proto::Assignment::default(),
            )),
        };
        tx.send(Item::Message(assignment)).await.expect("send");
        tx.send(record(3, 10)).await.expect("send");
        assert_eq!(
            next(&mut stream).await,
            Some(vec![0, 1, 2]),
            "all that was ready"
        );
        assert_eq!(next(&mut stream).await, Some(vec![]), "then the assignment");
        assert_eq!(
            next(&mut stream).await,
            Some(vec![3]),
            "a batch of one is not held back"
        );

        for offset in 0..(MAX_BATCH_RECORDS as i64 + 5) {
            tx.send(record(offset, 1)).await.expect("send");
        }
        assert_eq!(
            next(&mut stream).await.map(|b| b.len()),
            Some(MAX_BATCH_RECORDS)
        );
        assert_eq!(next(&mut stream).await.map(|b| b.len()), Some(5));

        // Bytes: two records of 600 KiB never share a batch; one of 2 MiB goes alone.
        for (offset, bytes) in [
            (0, 600 * 1024),
            (1, 600 * 1024),
            (2, 2 * MAX_BATCH_BYTES),
            (3, 1),
        ] {
            tx.send(record(offset, bytes)).await.expect("send");
        }
        assert_eq!(next(&mut stream).await, Some(vec![0]));
        assert_eq!(next(&mut stream).await, Some(vec![1]));
        assert_eq!(next(&mut stream).await, Some(vec![2]));
        assert_eq!(next(&mut stream).await, Some(vec![3]));
        drop(tx);
        assert_eq!(next(&mut stream).await, None);
    }
}
