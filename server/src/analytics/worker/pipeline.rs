//! The records polled and not yet counted: the batch being filled, and the one with the
//! [`Decoder`]. Their messages wait here, on the polling thread, until their values come
//! back decoded; then each is counted, in the order it was polled.
//!
//! While the decoder works on one batch the worker polls the next: when that one is full,
//! the first is counted and the second handed over. Everything is counted before a commit
//! (so a transaction covers every record polled before it), and when a poll comes back
//! empty (the worker has caught up: nothing to overlap with). After a rebalance what is in
//! flight is dropped: the records belonged to the old assignment, and the consumer reads
//! them again from the committed offsets.

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use super::decoder::{Batch, Decoded, Decoder, DecoderGone};

pub(super) struct Pipeline<'c> {
    decoder: Decoder,
    max_name: usize,
    /// The batch being filled, and its messages.
    filling: Batch,
    filling_messages: Vec<BorrowedMessage<'c>>,
    /// The messages of the batch the decoder holds.
    decoding_messages: Vec<BorrowedMessage<'c>>,
    /// A batch back from the decoder, kept for reuse.
    spare: Batch,
}

impl<'c> Pipeline<'c> {
    pub(super) fn new(decoder: Decoder, max_name: usize) -> Self {
        Self {
            decoder,
            max_name,
            filling: Batch::default(),
            filling_messages: Vec::new(),
            decoding_messages: Vec::new(),
            spare: Batch::default(),
        }
    }

    /// Adds a polled record.
    pub(super) fn push(&mut self, message: BorrowedMessage<'c>) {
        self.filling.push(message.payload().unwrap_or_default());
        self.filling_messages.push(message);
    }

    /// Nothing is waiting to be counted.
    pub(super) fn is_empty(&self) -> bool {
        self.filling.len() == 0 && !self.decoder.busy()
    }

    /// The batch being filled should go to the decoder.
    pub(super) fn is_full(&self) -> bool {
        self.filling.is_full()
    }

    /// Counts the batch the decoder holds (waiting for it), and hands it the one being
    /// filled.
    pub(super) fn advance(
        &mut self,
        mut count: impl FnMut(&BorrowedMessage<'c>, Decoded<'_>),
    ) -> Result<(), DecoderGone> {
        self.count_decoding(&mut count)?;
        if self.filling.len() > 0 {
            let batch = std::mem::replace(&mut self.filling, std::mem::take(&mut self.spare));
            self.decoder.send(batch)?;
            std::mem::swap(&mut self.filling_messages, &mut self.decoding_messages);
        }
        Ok(())
    }

    /// Counts everything: the batch the decoder holds, then the one being filled, decoded
    /// here (handing it over only to wait for it would gain nothing).
    pub(super) fn count_all(
        &mut self,
        mut count: impl FnMut(&BorrowedMessage<'c>, Decoded<'_>),
    ) -> Result<(), DecoderGone> {
        self.count_decoding(&mut count)?;
        self.filling.decode(self.max_name);
        count_batch(&mut self.filling_messages, &self.filling, &mut count);
        self.filling.clear();
        Ok(())
    }

    /// Drops everything not yet counted (after a rebalance).
    pub(super) fn discard(&mut self) -> Result<(), DecoderGone> {
        if self.decoder.busy() {
            let mut batch = self.decoder.wait()?;
            batch.clear();
            self.spare = batch;
        }
        self.decoding_messages.clear();
        self.filling_messages.clear();
        self.filling.clear();
        Ok(())
    }

    fn count_decoding(
        &mut self,
        count: &mut impl FnMut(&BorrowedMessage<'c>, Decoded<'_>),
    ) -> Result<(), DecoderGone> {
        if self.decoder.busy() {
            let mut batch = self.decoder.wait()?;
            count_batch(&mut self.decoding_messages, &batch, count);
            batch.clear();
            self.spare = batch;
        }
        Ok(())
    }
}

/// Counts each message with what its value decoded to, and lets the messages go.
fn count_batch<'c>(
    messages: &mut Vec<BorrowedMessage<'c>>,
    batch: &Batch,
    count: &mut impl FnMut(&BorrowedMessage<'c>, Decoded<'_>),
) {
    debug_assert_eq!(messages.len(), batch.len());
    for (message, decoded) in messages.iter().zip(batch.decoded()) {
        count(message, decoded);
    }
    messages.clear();
}
