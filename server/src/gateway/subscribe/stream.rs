//! The response stream of Subscribe. Each time the transport asks for a message it gets
//! every record that is ready, up to a bound, as one `RecordBatch` — never waiting for more
//! — so a busy stream pays the per-message cost of gRPC once per batch, and a quiet one
//! still gets each record at once.
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

/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;

/// Most bytes (as [`super::record::cost`] counts them) in one batch, unless its only record
/// is larger: well under the 4 MiB a gRPC client takes by default.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// What the consumer task hands to the response stream.
// The large variant is the one sent for every record; boxing it would add an allocation per
// record to save a few bytes on the rare barrier and error items.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// A record, where to store its offset once it is taken, its cost in bytes, and the
    /// share of the subscription's byte budget it holds until then.
    Record(
        proto::Record,
        RecordPosition,
        usize,
        Option<OwnedSemaphorePermit>,
    ),
    /// A message that is not a record (an Assignment).
    Message(SubscribeResponse),
    /// Fires once every item before it has been taken by the transport.
    Barrier(oneshot::Sender<()>),
    /// End the stream with this status.
    Error(Status),
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
}

impl SubscribeStream {
    /// Wraps the receiving side of a subscription's channel.
    pub fn new(items: mpsc::Receiver<Item>, consumer: Option<&Arc<SubscriptionConsumer>>) -> Self {
        Self {
            items,
            consumer: consumer.map(Arc::downgrade),
            held: None,
        }
    }

    fn next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        match self.held.take() {
            Some(item) => Poll::Ready(Some(item)),
            None => self.items.poll_recv(cx),
        }
    }

    /// A batch starting with `first`, plus every record already waiting, within the bounds.
    /// The first item that is not a record, or does not fit, waits in `held`.
    fn batch(&mut self, first: proto::Record, cost: usize) -> SubscribeResponse {
        let mut records = vec![first];
        let mut bytes = cost;
        let mut positions = Vec::new();
        while records.len() < MAX_BATCH_RECORDS {
            // `try_recv`, not `poll_recv`: taking what is already there must not spend the
            // task's cooperative budget, which would cut batches short.
            match self.items.try_recv() {
                Ok(Item::Record(record, position, cost, _budget))
                    if bytes + cost <= MAX_BATCH_BYTES =>
                {
                    bytes += cost;
                    records.push(record);
                    positions.push(position);
                }
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                // Nothing more is ready, or the channel closed: send what we have.
                Err(_) => break,
            }
        }
        self.store(positions.iter());
        SubscribeResponse {
            message: Some(subscribe_response::Message::Records(RecordBatch {
                records,
            })),
        }
    }

    /// Stores the offsets of records being handed over, for a group stream.
    fn store<'a>(&self, positions: impl Iterator<Item = &'a RecordPosition>) {
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
                // Each record's budget permit is released here, as the transport takes it.
                Poll::Ready(Some(Item::Record(record, position, cost, _budget))) => {
                    self.store(std::iter::once(&position));
                    Poll::Ready(Some(Ok(self.batch(record, cost))))
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
        Item::Record(record, position, value_bytes, None)
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
        let mut stream = SubscribeStream::new(rx, None);
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
