//! Length-prefixed messages: a flags byte, a 4-byte big-endian length, the message. gRPC
//! frames its messages so, and the Connect protocol's streaming envelopes are the same
//! shape (flag `0x02` marks Connect's end-of-stream message), so one splitter reads both.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before each message.
pub const HEADER: usize = 5;
/// The message is compressed.
pub const COMPRESSED: u8 = 0x01;
/// Connect: the end-of-stream message (JSON, with the status and trailers).
pub const END_STREAM: u8 = 0x02;

/// One message and its flags.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    pub flags: u8,
    pub message: Bytes,
}

/// `message` with its header.
pub fn encode(flags: u8, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER + message.len());
    out.put_u8(flags);
    // Every message here is bounded far below 4 GiB (the limits of the request path).
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// A message longer than the splitter's bound.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a message of {length} bytes is over the limit of {limit}")]
pub struct TooLarge {
    pub length: usize,
    pub limit: usize,
}

/// Splits a byte stream, in whatever chunks it arrives, into messages; holds at most one
/// message (of at most `limit` bytes) and its header.
#[derive(Debug)]
pub struct Splitter {
    buffer: BytesMut,
    limit: usize,
}

impl Splitter {
    pub fn new(limit: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            limit,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole message, if one is in.
    pub fn next(&mut self) -> Result<Option<Envelope>, TooLarge> {
        if self.buffer.len() < HEADER {
            return Ok(None);
        }
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if length > self.limit {
            return Err(TooLarge {
                length,
                limit: self.limit,
            });
        }
        if self.buffer.len() < HEADER + length {
            self.buffer.reserve(HEADER + length - self.buffer.len());
            return Ok(None);
        }
        let flags = self.buffer.get_u8();
        self.buffer.advance(HEADER - 1);
        let message = self.buffer.split_to(length).freeze();
        Ok(Some(Envelope { flags, message }))
    }

    /// Whether part of a message is left (the stream ended in the middle of one).
    pub fn holds_a_part(&self) -> bool {
        !self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_across_any_chunking() {
        let stream = [
            encode(0, b"one"),
            encode(END_STREAM, b""),
            encode(0, b"three"),
        ]
        .concat();
        for chunk in 1..stream.len() {
            let mut splitter = Splitter::new(16);
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                splitter.push(piece);
                while let Some(envelope) = splitter.next().expect("within the limit") {
                    seen.push(envelope);
                }
            }
            assert!(!splitter.holds_a_part());
            let messages: Vec<_> = seen.iter().map(|e| (e.flags, &e.message[..])).collect();
            assert_eq!(
                messages,
                [(0, &b"one"[..]), (END_STREAM, b""), (0, b"three")],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn refuses_a_declared_length_over_the_limit_before_buffering_it() {
        let mut splitter = Splitter::new(4);
        splitter.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            splitter.next(),
            Err(TooLarge {
                length: u32::MAX as usize,
                limit: 4
            })
        );
        let mut partial = Splitter::new(4);
        partial.push(&encode(0, b"abc")[..6]);
        assert_eq!(partial.next(), Ok(None));
        assert!(partial.holds_a_part());
    }
}
