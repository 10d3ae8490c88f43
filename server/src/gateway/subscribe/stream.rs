//! The response stream of Subscribe. It stores a record's offset for the group commit at the
//! moment tonic takes the record from the stream to write it to the client — never earlier —
//! which is what makes group subscriptions at-least-once.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::Stream;
use rdkafka::consumer::Consumer;
use streamgate::proto::SubscribeResponse;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tonic::Status;

use super::consumer::SubscriptionConsumer;

/// What the consumer task hands to the response stream.
// The large variant is the one sent for every record; boxing it would add an allocation per
// record to save a few bytes on the rare barrier and error items.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// A message to send, with the record position to store once it is taken, and the
    /// share of the subscription's byte budget it holds until then.
    Message(
        SubscribeResponse,
        Option<RecordPosition>,
        Option<OwnedSemaphorePermit>,
    ),
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
}

impl SubscribeStream {
    /// Wraps the receiving side of a subscription's channel.
    pub fn new(items: mpsc::Receiver<Item>, consumer: Option<&Arc<SubscriptionConsumer>>) -> Self {
        Self {
            items,
            consumer: consumer.map(Arc::downgrade),
        }
    }
}

impl Stream for SubscribeStream {
    type Item = Result<SubscribeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.items.poll_recv(cx) {
                // The budget's permit is released here, as the transport takes the message.
                Poll::Ready(Some(Item::Message(message, position, _budget))) => {
                    if let (Some(consumer), Some(position)) =
                        (self.consumer.as_ref().and_then(Weak::upgrade), position)
                    {
                        // Fails only if the partition was revoked meanwhile; the new owner
                        // then re-delivers the record, which at-least-once allows.
                        let _ = consumer.store_offset(
                            &position.topic,
                            position.partition,
                            position.offset,
                        );
                    }
                    Poll::Ready(Some(Ok(message)))
                }
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
