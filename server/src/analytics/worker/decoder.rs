//! The worker's second thread: it decodes R2's values as PageEvents while the worker's own
//! thread polls the next ones and counts the ones before.
//!
//! One thread polling, decoding and counting was the worker's bound: decoding (JSON and the
//! date) is a third of its time per record, and the other core was partly idle. The values
//! travel in [`Batch`]es — copied out of librdkafka's messages, which cannot leave the
//! polling thread — and come back with what each one decoded to; the batch is then reused.
//! The messages themselves wait on the polling thread until their batch is back: counting
//! needs their offsets, and a dead letter needs their keys and headers.
//!
//! A panic while decoding is caught per value and sent back as [`Decoded::Panicked`]: the
//! worker raises it again when it takes that record, so recovery sees the panic where it
//! would have been on one thread (see `recovery`).

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use streamgate::page_event::PageEvent;

/// Values in one batch, at most: the records polled and not yet counted are two batches.
const MAX_BATCH_RECORDS: usize = 1024;
/// Bytes of values in one batch before it is full (a larger value makes a batch alone).
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// What one value decoded to, as the counting reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoded<'b> {
    /// A PageEvent with this page name and duration.
    Event { name: &'b str, duration_ms: i64 },
    /// A PageEvent whose page name has this many bytes, more than the limit.
    NameTooLong(usize),
    /// Not a PageEvent; the error says why.
    Malformed(&'b str),
    /// Decoding it panicked with this message.
    Panicked(&'b str),
}

/// What one value decoded to, as the batch keeps it: texts are ranges of `Batch::text`.
#[derive(Debug)]
enum Slot {
    Event {
        name: Range<usize>,
        duration_ms: i64,
    },
    NameTooLong(usize),
    Malformed(Range<usize>),
    Panicked(Range<usize>),
}

/// Values to decode, then what they decoded to; it goes to the decoder and back, reused.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The values, one after the other; `ends[i]` is where value `i` ends.
    values: Vec<u8>,
    ends: Vec<usize>,
    /// Page names and error texts of the decoded values.
    text: String,
    decoded: Vec<Slot>,
}

impl Batch {
    /// Adds a value (copied).
    pub(super) fn push(&mut self, value: &[u8]) {
        self.values.extend_from_slice(value);
        self.ends.push(self.values.len());
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Enough for one hand-over.
    pub(super) fn is_full(&self) -> bool {
        self.ends.len() >= MAX_BATCH_RECORDS || self.values.len() >= MAX_BATCH_BYTES
    }

    /// Decodes every value; a page name longer than `max_name` bytes is not kept.
    pub(super) fn decode(&mut self, max_name: usize) {
        self.decode_with(|value, text| decode_one(value, max_name, text));
    }

    /// Decodes every value with `decode`, which appends its texts to the string it is given.
    fn decode_with(&mut self, decode: impl Fn(&[u8], &mut String) -> Slot) {
        self.text.clear();
        self.decoded.clear();
        let mut start = 0;
        for &end in &self.ends {
            let value = &self.values[start..end];
            start = end;
            let slot = catch_unwind(AssertUnwindSafe(|| decode(value, &mut self.text)))
                .unwrap_or_else(|panic| {
                    Slot::Panicked(append(&mut self.text, crate::supervisor::message(&*panic)))
                });
            self.decoded.push(slot);
        }
    }

    /// What each value decoded to, in the order they were pushed.
    pub(super) fn decoded(&self) -> impl Iterator<Item = Decoded<'_>> {
        self.decoded.iter().map(|slot| match slot {
            Slot::Event { name, duration_ms } => Decoded::Event {
                name: &self.text[name.clone()],
                duration_ms: *duration_ms,
            },
            Slot::NameTooLong(len) => Decoded::NameTooLong(*len),
            Slot::Malformed(error) => Decoded::Malformed(&self.text[error.clone()]),
            Slot::Panicked(message) => Decoded::Panicked(&self.text[message.clone()]),
        })
    }

    /// Empties it for reuse (its allocations are kept).
    pub(super) fn clear(&mut self) {
        self.values.clear();
        self.ends.clear();
        self.text.clear();
        self.decoded.clear();
    }
}

fn decode_one(value: &[u8], max_name: usize, text: &mut String) -> Slot {
    match PageEvent::decode(value) {
        Ok(event) if event.name.len() > max_name => Slot::NameTooLong(event.name.len()),
        Ok(event) => Slot::Event {
            name: append(text, &event.name),
            duration_ms: event.duration_ms,
        },
        // The error says "not a PageEvent: …" itself.
        Err(e) => Slot::Malformed(append(text, &e.to_string())),
    }
}

fn append(text: &mut String, part: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(part);
    start..text.len()
}

/// The decoding thread, and the batch it holds, if any. Dropping it ends the thread.
pub(super) struct Decoder {
    to_thread: Option<SyncSender<Batch>>,
    from_thread: Receiver<Batch>,
    thread: Option<JoinHandle<()>>,
    busy: bool,
}

/// The decoding thread stopped; it catches panics, so this is not expected.
#[derive(Debug, thiserror::Error)]
#[error("the analytics worker's decoding thread stopped")]
pub(super) struct DecoderGone;

impl Decoder {
    /// Starts the thread; page names longer than `max_name` bytes are refused.
    pub(super) fn start(max_name: usize) -> std::io::Result<Self> {
        // One batch each way at most: the worker waits for a batch before it sends another.
        let (to_thread, batches) = mpsc::sync_channel::<Batch>(1);
        let (results, from_thread) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("analytics-decode".into())
            .spawn(move || {
                while let Ok(mut batch) = batches.recv() {
                    batch.decode(max_name);
                    if results.send(batch).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            to_thread: Some(to_thread),
            from_thread,
            thread: Some(thread),
            busy: false,
        })
    }

    /// Whether a batch is with the thread.
    pub(super) fn busy(&self) -> bool {
        self.busy
    }

    /// Hands `batch` to the thread; it must not be busy.
    pub(super) fn send(&mut self, batch: Batch) -> Result<(), DecoderGone> {
        debug_assert!(!self.busy, "one batch at a time");
        let sender = self.to_thread.as_ref().ok_or(DecoderGone)?;
        sender.send(batch).map_err(|_| DecoderGone)?;
        self.busy = true;
        Ok(())
    }

    /// Waits for the batch the thread holds, decoded.
    pub(super) fn wait(&mut self) -> Result<Batch, DecoderGone> {
        let batch = self.from_thread.recv().map_err(|_| DecoderGone)?;
        self.busy = false;
        Ok(batch)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after the batch in hand, if any (its
        // result fits the channel, so the send does not block).
        self.to_thread = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] =
        br#"{"name":"P1","user":"U2","date":"2022-09-11T19:41:07.331+00:00","duration":96}"#;
    const ESCAPED: &[u8] = br#"{"name":"P\u0031\n","user":"U2","date":1662925267331,"duration":7}"#;

    fn decoded(batch: &Batch) -> Vec<Decoded<'_>> {
        batch.decoded().collect()
    }

    #[test]
    fn decodes_every_value_in_order() {
        let mut batch = Batch::default();
        for value in [EVENT, b"not json", ESCAPED, br#"{"name":"long-page"}"#, b""] {
            batch.push(value);
        }
        let long = br#"{"name":"a-long-page-name","user":"U","date":0,"duration":1}"#;
        batch.push(long);
        batch.decode(10);
        let out = decoded(&batch);
        assert_eq!(out.len(), 6);
        assert_eq!(
            out[0],
            Decoded::Event {
                name: "P1",
                duration_ms: 96
            }
        );
        assert!(matches!(out[1], Decoded::Malformed(e) if e.starts_with("not a PageEvent")));
        // An escaped name is unescaped (and not borrowed from the value).
        assert_eq!(
            out[2],
            Decoded::Event {
                name: "P1\n",
                duration_ms: 7
            }
        );
        assert!(matches!(out[3], Decoded::Malformed(e) if e.contains("missing field")));
        assert!(matches!(out[4], Decoded::Malformed(_)));
        assert_eq!(out[5], Decoded::NameTooLong(16));
    }

    #[test]
    fn a_reused_batch_forgets_the_last_one() {
        let mut batch = Batch::default();
        batch.push(b"x");
        batch.decode(256);
        batch.clear();
        assert_eq!(batch.len(), 0);
        batch.push(EVENT);
        batch.decode(256);
        assert_eq!(
            decoded(&batch),
            [Decoded::Event {
                name: "P1",
                duration_ms: 96
            }]
        );
    }

    #[test]
    fn a_batch_is_full_by_count_or_by_bytes() {
        let mut batch = Batch::default();
        for _ in 0..MAX_BATCH_RECORDS - 1 {
            batch.push(b"{}");
        }
        assert!(!batch.is_full());
        batch.push(b"{}");
        assert!(batch.is_full());
        let mut big = Batch::default();
        big.push(&vec![b' '; MAX_BATCH_BYTES]);
        assert!(big.is_full());
    }

    #[test]
    fn a_panic_while_decoding_is_that_value_s_alone() {
        let mut batch = Batch::default();
        for value in [EVENT, b"boom", EVENT] {
            batch.push(value);
        }
        batch.decode_with(|value, text| {
            assert!(value != b"boom", "the decoder choked");
            decode_one(value, 256, text)
        });
        let out = decoded(&batch);
        assert_eq!(out.len(), 3);
        assert!(matches!(out[0], Decoded::Event { name: "P1", .. }));
        assert!(matches!(out[1], Decoded::Panicked(m) if m == "the decoder choked"));
        assert!(matches!(out[2], Decoded::Event { name: "P1", .. }));
    }

    #[test]
    fn the_thread_decodes_and_sends_the_batch_back() {
        let mut decoder = Decoder::start(256).expect("thread");
        for round in 0..3 {
            let mut batch = Batch::default();
            batch.push(EVENT);
            batch.push(b"[]");
            assert!(!decoder.busy());
            decoder.send(batch).expect("send");
            assert!(decoder.busy());
            let back = decoder.wait().expect("batch back");
            assert!(!decoder.busy());
            let out = decoded(&back);
            assert_eq!(out.len(), 2, "round {round}");
            assert!(matches!(out[0], Decoded::Event { name: "P1", .. }));
            assert!(matches!(out[1], Decoded::Malformed(_)));
        }
        // Dropped with a batch in hand: the thread still ends.
        let mut batch = Batch::default();
        batch.push(EVENT);
        decoder.send(batch).expect("send");
        drop(decoder);
    }
}
