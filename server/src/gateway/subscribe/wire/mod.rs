//! Encoding a Kafka record straight from librdkafka's buffer into the protobuf bytes of one
//! `RecordBatch.records` entry — the very bytes prost would write for the `Record` that
//! [`to_record`](super::record::to_record) builds (a test holds it to that), without
//! building it: no owned topic, key, value and header copies per record, one copy into the
//! batch's buffer instead of two. Under a read mask ([`RecordMask`]) it is that `Record`
//! with the fields the mask leaves out unset (tested the same way).
//!
//! Field presence follows proto3 as prost encodes it: scalars and strings are left out when
//! zero or empty, `optional` fields and messages whenever they are set.

use bytes::BufMut;
use prost::encoding::{WireType, encoded_len_varint, key_len};
use prost_types::Timestamp;
use rdkafka::message::{Headers, Message};
use streamgate::page_event::PageEvent;
use streamgate::proto::TimestampType;
use streamgate::record_batch::RECORDS_TAG;
use streamgate::time::from_millis;

use super::mask::RecordMask;

// Field tags of `Record`, `Header` and `PageEvent` (event.proto).
const TOPIC: u32 = 1;
const PARTITION: u32 = 2;
const OFFSET: u32 = 3;
const TIMESTAMP: u32 = 4;
const TIMESTAMP_TYPE: u32 = 5;
const KEY: u32 = 6;
const HEADERS: u32 = 7;
const VALUE: u32 = 8;
const PAGE_EVENT: u32 = 9;
const HEADER_KEY: u32 = 1;
const HEADER_VALUE: u32 = 2;
const EVENT_NAME: u32 = 1;
const EVENT_USER: u32 = 2;
const EVENT_DATE: u32 = 3;
const EVENT_DURATION: u32 = 4;

/// One Kafka record, borrowed, ready to be encoded; knows its encoded length.
pub struct WireRecord<'m, M: Message> {
    topic: &'m str,
    partition: i32,
    offset: i64,
    /// The fields to encode; the ones left out encode as unset. `topic`, `partition` and
    /// `offset` are kept whatever the mask, for the session's bookkeeping; the others are
    /// not even read when left out.
    mask: RecordMask,
    timestamp: Option<Timestamp>,
    timestamp_type: TimestampType,
    key: Option<&'m [u8]>,
    headers: Option<&'m M::Headers>,
    value: Option<&'m [u8]>,
    page_event: Option<PageEvent<'m>>,
    /// Fields encoded elsewhere and appended as they are: the decoded value or why it did
    /// not decode (tags 10 and 11, after every field above, so still in tag order).
    extra: &'m [u8],
    /// Length of the `Record` message (without the entry's key and length).
    len: usize,
}

impl<'m, M: Message> WireRecord<'m, M> {
    /// Reads what encoding the fields of `message` in `mask` needs (each accessor of a
    /// librdkafka message is a call into C, so once) and measures it.
    pub fn new(message: &'m M, mask: RecordMask) -> Self {
        let (timestamp, timestamp_type) = match message.timestamp() {
            rdkafka::Timestamp::NotAvailable => (None, TimestampType::Unspecified),
            rdkafka::Timestamp::CreateTime(ms) => (Some(ms), TimestampType::CreateTime),
            rdkafka::Timestamp::LogAppendTime(ms) => (Some(ms), TimestampType::LogAppendTime),
        };
        let value = message.payload();
        let page_event = value
            .filter(|_| mask.page_event)
            // Only a JSON object can be one: values that cannot are not parsed at all (a
            // failed parse allocates its error).
            .filter(|v| v.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
            .and_then(|v| PageEvent::decode(v).ok());
        let mut record = Self {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            mask,
            timestamp: timestamp.filter(|_| mask.timestamp).map(from_millis),
            timestamp_type: if mask.timestamp_type {
                timestamp_type
            } else {
                TimestampType::Unspecified
            },
            key: message.key().filter(|_| mask.key),
            // Asked only when wanted: librdkafka allocates to parse them on every call.
            headers: if mask.headers {
                message.headers()
            } else {
                None
            },
            value: value.filter(|_| mask.value),
            page_event,
            extra: &[],
            len: 0,
        };
        record.len = record.body_len();
        record
    }

    /// The record with `extra`, fields of `Record` already encoded, appended.
    pub fn with_extra(mut self, extra: &'m [u8]) -> Self {
        self.len += extra.len() - self.extra.len();
        self.extra = extra;
        self
    }

    /// The topic the record was read from.
    pub fn topic(&self) -> &'m str {
        self.topic
    }

    /// Its partition and offset.
    pub fn position(&self) -> (i32, i64) {
        (self.partition, self.offset)
    }

    /// Bytes of the whole `RecordBatch.records` entry: key, length and the record.
    pub fn entry_len(&self) -> usize {
        key_len(RECORDS_TAG) + encoded_len_varint(self.len as u64) + self.len
    }

    /// Appends the `RecordBatch.records` entry to `buf`.
    pub fn encode_entry(&self, buf: &mut impl BufMut) {
        let mut small = Small::default();
        small.length_delimited(RECORDS_TAG, self.len);
        small.text(TOPIC, self.shown_topic().as_bytes(), buf);
        small.int(PARTITION, i64::from(self.shown_partition()));
        small.int(OFFSET, self.shown_offset());
        if let Some(timestamp) = &self.timestamp {
            small.length_delimited(TIMESTAMP, timestamp_len(timestamp));
            small.int(1, timestamp.seconds);
            small.int(2, i64::from(timestamp.nanos));
        }
        small.int(TIMESTAMP_TYPE, self.timestamp_type as i64);
        if let Some(key) = self.key {
            small.bytes(KEY, key, buf);
        }
        for header in self.headers.into_iter().flat_map(Headers::iter) {
            let value = header.value.unwrap_or_default();
            small.length_delimited(HEADERS, header_len(header.key, value));
            small.text(HEADER_KEY, header.key.as_bytes(), buf);
            small.text(HEADER_VALUE, value, buf);
            // An empty header gathers two bytes and flushes nothing: any number may come.
            small.flush(buf);
        }
        if let Some(value) = self.value {
            small.bytes(VALUE, value, buf);
        }
        if let Some(event) = &self.page_event {
            let date = from_millis(event.date_ms);
            small.length_delimited(PAGE_EVENT, event_len(event, &date));
            small.text(EVENT_NAME, event.name.as_bytes(), buf);
            small.bytes(EVENT_USER, event.user.as_bytes(), buf);
            small.length_delimited(EVENT_DATE, timestamp_len(&date));
            small.int(1, date.seconds);
            small.int(2, i64::from(date.nanos));
            small.int(EVENT_DURATION, event.duration_ms);
            // `duration_ms` is `optional`: present even when zero.
            if event.duration_ms == 0 {
                small.key(EVENT_DURATION, WireType::Varint);
                small.varint(0);
            }
        }
        small.flush(buf);
        buf.put_slice(self.extra);
    }

    fn body_len(&self) -> usize {
        let mut len = text_len(TOPIC, self.shown_topic().len())
            + int_len(PARTITION, i64::from(self.shown_partition()))
            + int_len(OFFSET, self.shown_offset())
            + int_len(TIMESTAMP_TYPE, self.timestamp_type as i64);
        if let Some(timestamp) = &self.timestamp {
            len += bytes_len(TIMESTAMP, timestamp_len(timestamp));
        }
        len += self.key.map_or(0, |key| bytes_len(KEY, key.len()));
        for header in self.headers.into_iter().flat_map(Headers::iter) {
            len += bytes_len(
                HEADERS,
                header_len(header.key, header.value.unwrap_or_default()),
            );
        }
        len += self.value.map_or(0, |value| bytes_len(VALUE, value.len()));
        if let Some(event) = &self.page_event {
            len += bytes_len(PAGE_EVENT, event_len(event, &from_millis(event.date_ms)));
        }
        len
    }

    // What is encoded of the fields the session also needs: the zero value, which proto3
    // leaves out, when the mask leaves them out.
    fn shown_topic(&self) -> &'m str {
        if self.mask.topic { self.topic } else { "" }
    }

    fn shown_partition(&self) -> i32 {
        if self.mask.partition {
            self.partition
        } else {
            0
        }
    }

    fn shown_offset(&self) -> i64 {
        if self.mask.offset { self.offset } else { 0 }
    }
}

/// Keys, lengths and integers gathered on the stack and written with one call: they are a
/// byte or a few each, and a `BufMut` call per byte was most of the cost of encoding.
///
/// Between two flushes it holds at most the record's entry key and length, its scalar
/// fields and the keys and lengths of the PageEvent (under 128 bytes): every bytes field
/// flushes it, and so does every header.
struct Small {
    bytes: [u8; 128],
    len: usize,
}

impl Default for Small {
    fn default() -> Self {
        Self {
            bytes: [0; 128],
            len: 0,
        }
    }
}

impl Small {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes[self.len] = (value as u8) | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.bytes[self.len] = value as u8;
        self.len += 1;
    }

    fn key(&mut self, tag: u32, wire_type: WireType) {
        self.varint(u64::from(tag << 3 | wire_type as u32));
    }

    fn length_delimited(&mut self, tag: u32, len: usize) {
        self.key(tag, WireType::LengthDelimited);
        self.varint(len as u64);
    }

    /// A proto3 integer without presence: left out when zero. Negative values take ten
    /// bytes, as protobuf's `int32`/`int64` encode them.
    fn int(&mut self, tag: u32, value: i64) {
        if value != 0 {
            self.key(tag, WireType::Varint);
            self.varint(value as u64);
        }
    }

    /// A length-delimited field that is always present (`optional` bytes or string).
    fn bytes(&mut self, tag: u32, data: &[u8], buf: &mut impl BufMut) {
        self.length_delimited(tag, data.len());
        self.flush(buf);
        buf.put_slice(data);
    }

    /// A proto3 string or bytes field without presence: left out when empty.
    fn text(&mut self, tag: u32, data: &[u8], buf: &mut impl BufMut) {
        if !data.is_empty() {
            self.bytes(tag, data, buf);
        }
    }

    fn flush(&mut self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes[..self.len]);
        self.len = 0;
    }
}

fn header_len(key: &str, value: &[u8]) -> usize {
    text_len(HEADER_KEY, key.len()) + text_len(HEADER_VALUE, value.len())
}

fn event_len(event: &PageEvent<'_>, date: &Timestamp) -> usize {
    text_len(EVENT_NAME, event.name.len())
        + bytes_len(EVENT_USER, event.user.len())
        + bytes_len(EVENT_DATE, timestamp_len(date))
        // `optional`: present even when zero.
        + key_len(EVENT_DURATION)
        + encoded_len_varint(event.duration_ms as u64)
}

fn timestamp_len(timestamp: &Timestamp) -> usize {
    int_len(1, timestamp.seconds) + int_len(2, i64::from(timestamp.nanos))
}

fn int_len(tag: u32, value: i64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value as u64)
    }
}

/// A length-delimited field that is always present (`optional`, or a message).
fn bytes_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A proto3 string or bytes field without presence: left out when empty.
fn text_len(tag: u32, len: usize) -> usize {
    if len == 0 { 0 } else { bytes_len(tag, len) }
}

#[cfg(test)]
mod tests;
