//! Connect's streaming envelopes: a flags byte, a 4-byte big-endian length, the message.
//! A stream's last envelope has the end-of-stream flag and carries JSON, whatever the codec.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before each message.
const HEADER: usize = 5;
/// The message is compressed (the bench never asks for compression).
pub const COMPRESSED: u8 = 0x01;
/// The end-of-stream message: `{}` or `{"error":{…}}`.
pub const END_STREAM: u8 = 0x02;

/// `message` in an envelope with `flags`.
pub fn encode(flags: u8, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER + message.len());
    out.put_u8(flags);
    // The bench's requests are a few hundred bytes.
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// One message and its flags.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    /// [`COMPRESSED`], [`END_STREAM`].
    pub flags: u8,
    /// The message, in the stream's codec (JSON for the end of the stream).
    pub message: Bytes,
}

/// Splits a body, in whatever chunks it arrives, into envelopes.
#[derive(Debug, Default)]
pub struct Splitter {
    buffer: BytesMut,
}

impl Splitter {
    /// Adds bytes read from the body.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole envelope, if one is in.
    pub fn next(&mut self) -> Option<Envelope> {
        let header = self.buffer.get(..HEADER)?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if self.buffer.len() < HEADER + length {
            return None;
        }
        let flags = self.buffer.get_u8();
        self.buffer.advance(HEADER - 1);
        let message = self.buffer.split_to(length).freeze();
        Some(Envelope { flags, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_split_out_of_any_chunking() {
        let mut stream = encode(0, b"first").to_vec();
        stream.extend_from_slice(&encode(0, b""));
        stream.extend_from_slice(&encode(END_STREAM, b"{}"));
        for chunk in [1, 3, 5, 7, stream.len()] {
            let mut splitter = Splitter::default();
            let mut got = Vec::new();
            for part in stream.chunks(chunk) {
                splitter.push(part);
                while let Some(envelope) = splitter.next() {
                    got.push(envelope);
                }
            }
            let expected = [(0, &b"first"[..]), (0, b""), (END_STREAM, b"{}")];
            let got: Vec<(u8, &[u8])> = got.iter().map(|e| (e.flags, &e.message[..])).collect();
            assert_eq!(got, expected, "chunks of {chunk}");
        }
        let mut splitter = Splitter::default();
        splitter.push(&encode(0, b"cut")[..6]);
        assert_eq!(splitter.next(), None);
    }
}
