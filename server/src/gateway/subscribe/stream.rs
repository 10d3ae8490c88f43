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

use bytes::BytesMut;
use futures::Stream;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use streamgate::proto::{RecordBatch, SubscribeResponse, subscribe_response};
use streamgate::record_batch::EncodedRecords;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tonic::Status;

use super::consumer::SubscriptionConsumer;
use super::wire::WireRecord;
use crate::metrics::RecordMetrics;

/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;

/// Most encoded bytes in one batch, unless its only record is larger: well under the 4 MiB
/// a gRPC client takes by default.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// The size of a fresh block of a session's arena (more when one record needs it).
const ARENA_BLOCK: usize = 64 * 1024;

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

/// Records on their way to the client, already encoded, with what taking them settles.
///
/// The session encodes records into the tail of its arena (a `BytesMut` it keeps) and
/// [`seal`](Self::seal)s the delivery before sending it, which splits the encoded bytes off
/// the arena without copying them. Until sealed, the arena's written bytes are this
/// delivery's.
#[derive(Default)]
pub struct Delivery {
    /// The sealed records, in order.
    pub records: EncodedRecords,
    /// How many records, sealed or still in the arena.
    count: usize,
    /// Records read and left out by the stream's filter: their offsets are stored with the
    /// delivered ones', nothing of them is sent.
    skipped: usize,
    /// Per partition read: the offset to store once the records are taken (the highest) and
    /// how many records of it there are.
    pub partitions: Vec<PartitionRun>,
    /// Their encoded bytes: what they hold in memory until taken.
    pub bytes: usize,
    /// Their share of the subscription's buffer, released when the transport takes them.
    pub budget: Vec<OwnedSemaphorePermit>,
}

impl Delivery {
    /// Encodes `record`, read at `offset` of `topic`/`partition`, into `arena`.
    pub fn push<M: Message>(
        &mut self,
        arena: &mut BytesMut,
        record: &WireRecord<'_, M>,
        topic: &Arc<str>,
        (partition, offset): (i32, i64),
    ) {
        let len = record.entry_len();
        if arena.capacity() - arena.len() < len {
            // Growing the arena with this delivery's bytes still in it would copy them (a
            // realloc per block crossed: 1.5 % of the server in a Subscribe profile). They
            // become a chunk of their own first, so the arena is empty when it grows.
            self.seal_chunk(arena);
            // A block per many records; reclaimed in place once all its deliveries are sent.
            arena.reserve(len.max(ARENA_BLOCK));
        }
        record.encode_entry(arena);
        self.count += 1;
        self.bytes += len;
        self.note(topic, partition, offset, (1, 0));
    }

    /// Notes a record the filter left out, read at `offset` of `topic`/`partition`.
    pub fn skip(&mut self, topic: &Arc<str>, (partition, offset): (i32, i64)) {
        self.skipped += 1;
        self.note(topic, partition, offset, (0, 1));
    }

    /// Moves the records encoded in `arena` into the delivery.
    pub fn seal(&mut self, arena: &mut BytesMut) {
        self.seal_chunk(arena);
        // After a record larger than a block, the rest of its block would stay with the
        // session for good: let it go with the delivery instead.
        if arena.capacity() > ARENA_BLOCK {
            *arena = BytesMut::new();
        }
    }

    /// Moves the bytes written in `arena` since the last chunk into a chunk of the delivery.
    fn seal_chunk(&mut self, arena: &mut BytesMut) {
        let unsealed = self.count - self.records.count();
        self.records.push_chunk(arena.split().freeze(), unsealed);
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no record to send and no skipped one to store the offset of.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.skipped == 0
    }

    /// Whether another record of `len` bytes stays within the batch bounds.
    pub fn has_room(&self, len: usize, max_records: usize) -> bool {
        // Skipped records count too, so that a long run of them still ends a batch (and the
        // session yields).
        self.count + self.skipped == 0
            || (self.count + self.skipped < max_records && self.bytes + len <= MAX_BATCH_BYTES)
    }

    /// Appends `other` (sealed), which was read after this one (sealed).
    fn append(&mut self, other: Delivery) {
        self.records.append(other.records);
        self.count += other.count;
        self.skipped += other.skipped;
        self.bytes += other.bytes;
        self.budget.extend(other.budget);
        for run in other.partitions {
            self.note(
                &run.topic,
                run.partition,
                run.offset,
                (run.records, run.skipped),
            );
        }
    }

    /// Counts `records` sent and `skipped` left-out records of `partition` up to `offset`: records of one partition come
    /// in offset order, so the last one is the highest. The topic is cloned only for a
    /// partition not seen before (this runs for every record).
    fn note(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        (records, skipped): (u64, u64),
    ) {
        // Topic names are interned by the session: a pointer comparison is enough.
        match self
            .partitions
            .iter_mut()
            .find(|p| p.partition == partition && Arc::ptr_eq(&p.topic, topic))
        {
            Some(known) => {
                known.offset = offset;
                known.records += records;
                known.skipped += skipped;
            }
            None => self.partitions.push(PartitionRun {
                topic: topic.clone(),
                partition,
                offset,
                records,
                skipped,
            }),
        }
    }
}

/// The records of one partition in a delivery.
pub struct PartitionRun {
    /// Topic (interned by the session).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset of the last record, sent or skipped.
    pub offset: i64,
    /// How many records are sent.
    pub records: u64,
    /// How many records the filter left out.
    pub skipped: u64,
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
    fn batch(&mut self, mut delivery: Delivery) -> Option<SubscribeResponse> {
        loop {
            // `try_recv`, not `poll_recv`: taking what is already there must not spend the
            // task's cooperative budget, which would cut batches short.
            match self.items.try_recv() {
                Ok(Item::Records(more))
                    if delivery.len() + more.len() <= MAX_BATCH_RECORDS
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
        self.store(&delivery.partitions);
        for run in &delivery.partitions {
            self.metrics.delivered(&run.topic, run.records);
            self.metrics.filtered(&run.topic, run.skipped);
        }
        // Only skipped records: their offsets are stored, and nothing is sent.
        if delivery.count == 0 {
            return None;
        }
        // The budget is released here, as the transport takes the records.
        Some(SubscribeResponse {
            message: Some(subscribe_response::Message::Records(
                RecordBatch::from_encoded(delivery.records),
            )),
        })
    }

    /// Stores the offsets of records being handed over, for a group stream.
    fn store(&self, partitions: &[PartitionRun]) {
        let Some(consumer) = self.consumer.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        for position in partitions {
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
                Poll::Ready(Some(Item::Records(delivery))) => match self.batch(delivery) {
                    Some(batch) => Poll::Ready(Some(Ok(batch))),
                    None => continue,
                },
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
    use prost::Message as _;
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;
    use streamgate::proto;

    use super::*;
    use crate::gateway::subscribe::mask::RecordMask;

    fn record(offset: i64, value_bytes: usize) -> Item {
        let message = OwnedMessage::new(
            Some(vec![b'x'; value_bytes]),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            offset,
            None,
        );
        let mut arena = BytesMut::new();
        let mut delivery = Delivery::default();
        let topic = Arc::from("t");
        delivery.push(
            &mut arena,
            &WireRecord::new(&message, RecordMask::ALL),
            &topic,
            (0, offset),
        );
        delivery.seal(&mut arena);
        Item::Records(delivery)
    }

    /// What the stream yields: the offsets of a batch (decoded as a client would), or
    /// nothing for an assignment.
    async fn next(stream: &mut SubscribeStream) -> Option<Vec<i64>> {
        match stream.next().await?.expect("no error").message? {
            subscribe_response::Message::Records(batch) => {
                let decoded =
                    RecordBatch::decode(batch.encode_to_vec().as_slice()).expect("a batch decodes");
                assert_eq!(decoded.records.len(), batch.len());
                Some(decoded.records.iter().map(|r| r.offset).collect())
            }
            _ => Some(Vec::new()), // an assignment
        }
    }

    #[test]
    fn a_large_record_does_not_leave_its_block_with_the_session() {
        let message = |bytes: usize| {
            OwnedMessage::new(
                Some(vec![b'x'; bytes]),
                None,
                "t".into(),
                Timestamp::NotAvailable,
                0,
                0,
                None,
            )
        };
        let (large, small) = (message(4 * ARENA_BLOCK), message(10));
        let mut arena = BytesMut::new();
        let topic = Arc::from("t");
        for record in [&large, &small, &small] {
            let mut delivery = Delivery::default();
            delivery.push(
                &mut arena,
                &WireRecord::new(record, RecordMask::ALL),
                &topic,
                (0, 0),
            );
            delivery.seal(&mut arena);
            drop(delivery); // sent: the arena's block is its own again
            assert!(arena.capacity() <= ARENA_BLOCK, "{}", arena.capacity());
        }
    }

    #[test]
    fn a_delivery_larger_than_a_block_keeps_every_record_in_order() {
        let mut arena = BytesMut::new();
        let topic = Arc::from("t");
        let mut delivery = Delivery::default();
        // 200 records of 1000 bytes: the delivery crosses three blocks.
        let messages: Vec<OwnedMessage> = (0..200)
            .map(|offset| {
                let value = format!("{offset:04}").repeat(250).into_bytes();
                OwnedMessage::new(
                    Some(value),
                    None,
                    "t".into(),
                    Timestamp::NotAvailable,
                    0,
                    offset,
                    None,
                )
            })
            .collect();
        for message in &messages {
            let at = (0, message.offset());
            delivery.push(
                &mut arena,
                &WireRecord::new(message, RecordMask::ALL),
                &topic,
                at,
            );
        }
        delivery.seal(&mut arena);
        assert_eq!(delivery.len(), 200);
        assert_eq!(delivery.records.count(), 200);
        assert_eq!(delivery.records.len(), delivery.bytes);
        let batch = RecordBatch::from_encoded(std::mem::take(&mut delivery.records));
        let decoded = RecordBatch::decode(batch.encode_to_vec().as_slice()).expect("decodes");
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..200).collect::<Vec<_>>());
        for (record, message) in decoded.records.iter().zip(&messages) {
            assert_eq!(record.value.as_deref(), message.payload());
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
