//! `streamgate.v1.RecordBatch`, written by hand instead of generated, so that a server can
//! send records it has already encoded.
//!
//! On the wire it is exactly the message of `gateway.proto` (`repeated Record records = 1`),
//! and a client decodes it into [`RecordBatch::records`] like any generated message. The
//! difference is on the sending side: a Subscribe stream encodes each Kafka record straight
//! from librdkafka's buffer into protobuf bytes, once, and hands those bytes over as
//! [`EncodedRecords`] — no `Record` with its owned strings and buffers is built, copied into
//! the response and dropped for every record.

use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType};

use crate::proto::Record;

/// The tag of `RecordBatch.records`.
pub const RECORDS_TAG: u32 = 1;

/// A batch of records: those decoded or built in memory, then those already encoded.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct RecordBatch {
    /// The records of a decoded batch (all of them, on a client).
    pub records: Vec<Record>,
    /// Records already encoded, sent after `records`; never filled by decoding.
    pub encoded: EncodedRecords,
}

impl RecordBatch {
    /// A batch of records already encoded.
    pub fn from_encoded(encoded: EncodedRecords) -> Self {
        Self {
            records: Vec::new(),
            encoded,
        }
    }

    /// How many records the batch holds, decoded and encoded.
    pub fn len(&self) -> usize {
        self.records.len() + self.encoded.count
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Records encoded as entries of `RecordBatch.records` — each its field key, its length and
/// the `Record` message — in chunks that are sent one after the other without a copy of
/// their own.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct EncodedRecords {
    chunks: Vec<Bytes>,
    count: usize,
    len: usize,
}

impl EncodedRecords {
    /// Adds `count` records encoded in `chunk` (entries of field [`RECORDS_TAG`], complete).
    /// The caller vouches for the bytes: they are sent as they are.
    pub fn push_chunk(&mut self, chunk: Bytes, count: usize) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        self.count += count;
        self.chunks.push(chunk);
    }

    /// Appends the records of `other`, which come after these.
    pub fn append(&mut self, other: EncodedRecords) {
        self.len += other.len;
        self.count += other.count;
        self.chunks.extend(other.chunks);
    }

    /// How many records.
    pub fn count(&self) -> usize {
        self.count
    }

    /// How many bytes, all chunks together.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl prost::Message for RecordBatch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        prost::encoding::message::encode_repeated(RECORDS_TAG, &self.records, buf);
        for chunk in &self.encoded.chunks {
            buf.put_slice(chunk);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == RECORDS_TAG {
            prost::encoding::message::merge_repeated(wire_type, &mut self.records, buf, ctx)
        } else {
            prost::encoding::skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        prost::encoding::message::encoded_len_repeated(RECORDS_TAG, &self.records)
            + self.encoded.len
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn record(offset: i64) -> Record {
        Record {
            topic: "pages".into(),
            offset,
            value: Some(Bytes::from_static(b"v")),
            ..Default::default()
        }
    }

    /// Entries of field 1 for `records`, as a generated message would encode them.
    fn entries(records: &[Record]) -> Bytes {
        let mut buf = Vec::new();
        prost::encoding::message::encode_repeated(RECORDS_TAG, records, &mut buf);
        buf.into()
    }

    #[test]
    fn encoded_records_decode_as_the_records_they_were() {
        let mut encoded = EncodedRecords::default();
        encoded.push_chunk(entries(&[record(1), record(2)]), 2);
        let mut more = EncodedRecords::default();
        more.push_chunk(entries(&[record(3)]), 1);
        encoded.append(more);
        let batch = RecordBatch {
            records: vec![record(0)],
            encoded,
        };
        assert_eq!(batch.len(), 4);

        let bytes = batch.encode_to_vec();
        assert_eq!(bytes.len(), batch.encoded_len());
        let decoded = RecordBatch::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(
            decoded.records,
            vec![record(0), record(1), record(2), record(3)]
        );
        assert!(decoded.encoded.is_empty());
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut bytes = Vec::new();
        prost::encoding::string::encode(9, &"from a newer server".to_string(), &mut bytes);
        bytes.extend_from_slice(&entries(&[record(5)]));
        let decoded = RecordBatch::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded.records, vec![record(5)]);
    }
}
