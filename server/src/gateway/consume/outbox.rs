//! The outbox: how a Consume session sends without ever waiting on its client. A response
//! the channel has no room for is queued behind it and moved in as the client reads, so
//! the session keeps reading acks while the client is slow to read records (a client
//! blocked on sending acks while the server is blocked on sending records would deadlock
//! the stream). The queue is bounded by the ledger: every record in it is outstanding.

use std::collections::VecDeque;

use rdkafka::TopicPartitionList;
use streamgate::proto::{self, ConsumeResponse, ConsumedRecord, ConsumedRecords, consume_response};
use tokio::sync::mpsc;
use tonic::Status;

/// What the response stream carries.
pub type Response = Result<ConsumeResponse, Status>;

/// The channel to the client's response stream, with the responses waiting for room in it.
pub struct Outbox {
    tx: mpsc::Sender<Response>,
    queued: VecDeque<Response>,
}

impl Outbox {
    /// An empty outbox in front of `tx`.
    pub fn new(tx: mpsc::Sender<Response>) -> Self {
        Self {
            tx,
            queued: VecDeque::new(),
        }
    }

    /// Queues a response without waiting, behind any already waiting.
    pub fn send(&mut self, response: Response) {
        if !self.queued.is_empty() {
            self.queued.push_back(response);
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(response)) = self.tx.try_send(response) {
            self.queued.push_back(response);
        }
    }

    /// Whether responses wait for room.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Whether the client has taken everything sent: nothing queued here or in the channel.
    pub fn is_drained(&self) -> bool {
        self.queued.is_empty() && self.tx.capacity() == self.tx.max_capacity()
    }

    /// Resolves once the channel has room (`true`) or the client is gone (`false`); then
    /// [`Outbox::move_queued`] fills the room.
    pub async fn room(&self) -> bool {
        self.tx.reserve().await.is_ok()
    }

    /// Moves what the channel has room for from the queue into it.
    pub fn move_queued(&mut self) {
        while let Some(response) = self.queued.pop_front() {
            if let Err(mpsc::error::TrySendError::Full(response)) = self.tx.try_send(response) {
                self.queued.push_front(response);
                return;
            }
        }
    }

    /// Resolves once the client has read everything in the channel.
    pub async fn emptied(&self) {
        drop(self.tx.reserve_many(self.tx.max_capacity()).await);
    }

    /// Resolves when the client went away.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// A response carrying `records`.
pub fn records(records: Vec<ConsumedRecord>) -> Response {
    Ok(ConsumeResponse {
        message: Some(consume_response::Message::Records(ConsumedRecords {
            records,
        })),
    })
}

/// The announcement when the group's commits could not be read: the partitions, with
/// unknown offsets.
pub fn unknown_starts(assignment: &TopicPartitionList) -> Vec<proto::PartitionStart> {
    assignment
        .elements()
        .iter()
        .map(|e| proto::PartitionStart {
            topic: e.topic().to_owned(),
            partition: e.partition(),
            start_offset: -1,
            low_watermark: -1,
            high_watermark: -1,
        })
        .collect()
}
