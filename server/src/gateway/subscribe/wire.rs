//! Encoding a Kafka record straight from librdkafka's buffer into the protobuf bytes of one
//! `RecordBatch.records` entry — the very bytes prost would write for the `Record` that
//! [`to_record`](super::record::to_record) builds (a test holds it to that), without
//! building it: no owned topic, key, value and header copies per record, one copy into the
//! batch's buffer instead of two.
//!
//! Field presence follows proto3 as prost encodes it: scalars and strings are left out when
//! zero or empty, `optional` fields and messages whenever they are set.

use bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use prost_types::Timestamp;
use rdkafka::message::{Headers, Message};
use streamgate::page_event::PageEvent;
use streamgate::proto::TimestampType;
use streamgate::record_batch::RECORDS_TAG;
use streamgate::time::from_millis;

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
    message: &'m M,
    timestamp: Option<(Timestamp, TimestampType)>,
    page_event: Option<PageEvent<'m>>,
    /// Length of the `Record` message (without the entry's key and length).
    len: usize,
}

impl<'m, M: Message> WireRecord<'m, M> {
    /// Reads what encoding `message` needs (its timestamp, its PageEvent if the value is one)
    /// and measures it.
    pub fn new(message: &'m M) -> Self {
        let timestamp = match message.timestamp() {
            rdkafka::Timestamp::NotAvailable => None,
            rdkafka::Timestamp::CreateTime(ms) => {
                Some((from_millis(ms), TimestampType::CreateTime))
            }
            rdkafka::Timestamp::LogAppendTime(ms) => {
                Some((from_millis(ms), TimestampType::LogAppendTime))
            }
        };
        let page_event = message
            .payload()
            // Only a JSON object can be one: values that cannot are not parsed at all (a
            // failed parse allocates its error).
            .filter(|v| v.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
            .and_then(|v| PageEvent::decode(v).ok());
        let mut record = Self {
            message,
            timestamp,
            page_event,
            len: 0,
        };
        record.len = record.body_len();
        record
    }

    /// Bytes of the whole `RecordBatch.records` entry: key, length and the record.
    pub fn entry_len(&self) -> usize {
        key_len(RECORDS_TAG) + encoded_len_varint(self.len as u64) + self.len
    }

    /// Appends the `RecordBatch.records` entry to `buf`.
    pub fn encode_entry(&self, buf: &mut impl BufMut) {
        encode_key(RECORDS_TAG, WireType::LengthDelimited, buf);
        encode_varint(self.len as u64, buf);
        let m = self.message;
        put_str(TOPIC, m.topic(), buf);
        if m.partition() != 0 {
            prost::encoding::int32::encode(PARTITION, &m.partition(), buf);
        }
        if m.offset() != 0 {
            prost::encoding::int64::encode(OFFSET, &m.offset(), buf);
        }
        if let Some((timestamp, kind)) = &self.timestamp {
            prost::encoding::message::encode(TIMESTAMP, timestamp, buf);
            prost::encoding::int32::encode(TIMESTAMP_TYPE, &(*kind as i32), buf);
        }
        if let Some(key) = m.key() {
            put_bytes(KEY, key, buf);
        }
        for header in m.headers().into_iter().flat_map(Headers::iter) {
            let value = header.value.unwrap_or_default();
            encode_key(HEADERS, WireType::LengthDelimited, buf);
            encode_varint(header_len(header.key, value) as u64, buf);
            put_str(HEADER_KEY, header.key, buf);
            put_str_bytes(HEADER_VALUE, value, buf);
        }
        if let Some(value) = m.payload() {
            put_bytes(VALUE, value, buf);
        }
        if let Some(event) = &self.page_event {
            encode_key(PAGE_EVENT, WireType::LengthDelimited, buf);
            encode_varint(event_len(event) as u64, buf);
            put_str(EVENT_NAME, &event.name, buf);
            put_bytes(EVENT_USER, event.user.as_bytes(), buf);
            prost::encoding::message::encode(EVENT_DATE, &from_millis(event.date_ms), buf);
            prost::encoding::int64::encode(EVENT_DURATION, &event.duration_ms, buf);
        }
    }

    fn body_len(&self) -> usize {
        let m = self.message;
        let mut len = str_len(TOPIC, m.topic().len());
        if m.partition() != 0 {
            len += prost::encoding::int32::encoded_len(PARTITION, &m.partition());
        }
        if m.offset() != 0 {
            len += prost::encoding::int64::encoded_len(OFFSET, &m.offset());
        }
        if let Some((timestamp, kind)) = &self.timestamp {
            len += prost::encoding::message::encoded_len(TIMESTAMP, timestamp)
                + prost::encoding::int32::encoded_len(TIMESTAMP_TYPE, &(*kind as i32));
        }
        len += m.key().map_or(0, |key| bytes_len(KEY, key.len()));
        for header in m.headers().into_iter().flat_map(Headers::iter) {
            len += bytes_len(
                HEADERS,
                header_len(header.key, header.value.unwrap_or_default()),
            );
        }
        len += m.payload().map_or(0, |value| bytes_len(VALUE, value.len()));
        if let Some(event) = &self.page_event {
            len += bytes_len(PAGE_EVENT, event_len(event));
        }
        len
    }
}

fn header_len(key: &str, value: &[u8]) -> usize {
    str_len(HEADER_KEY, key.len()) + str_len(HEADER_VALUE, value.len())
}

fn event_len(event: &PageEvent<'_>) -> usize {
    str_len(EVENT_NAME, event.name.len())
        + bytes_len(EVENT_USER, event.user.len())
        + prost::encoding::message::encoded_len(EVENT_DATE, &from_millis(event.date_ms))
        + prost::encoding::int64::encoded_len(EVENT_DURATION, &event.duration_ms)
}

/// A length-delimited field that is always present (`optional`, or a message).
fn bytes_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A proto3 string or bytes field without presence: left out when empty.
fn str_len(tag: u32, len: usize) -> usize {
    if len == 0 { 0 } else { bytes_len(tag, len) }
}

fn put_bytes(tag: u32, data: &[u8], buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(data.len() as u64, buf);
    buf.put_slice(data);
}

fn put_str(tag: u32, text: &str, buf: &mut impl BufMut) {
    put_str_bytes(tag, text.as_bytes(), buf);
}

fn put_str_bytes(tag: u32, data: &[u8], buf: &mut impl BufMut) {
    if !data.is_empty() {
        put_bytes(tag, data, buf);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use prost::Message as _;
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
    use streamgate::page_event::PageEvent;
    use streamgate::proto;

    use super::WireRecord;
    use crate::gateway::subscribe::record::to_record;

    /// What prost writes for the `Record` that `to_record` builds, as a batch entry.
    fn reference(message: &OwnedMessage) -> Vec<u8> {
        let batch = proto::RecordBatch {
            records: vec![to_record(message)],
            ..Default::default()
        };
        batch.encode_to_vec()
    }

    fn wire(message: &OwnedMessage) -> Vec<u8> {
        let record = WireRecord::new(message);
        let mut buf = Vec::new();
        record.encode_entry(&mut buf);
        assert_eq!(buf.len(), record.entry_len(), "measured length is exact");
        buf
    }

    fn message(
        value: Option<Vec<u8>>,
        key: Option<Vec<u8>>,
        timestamp: Timestamp,
        (partition, offset): (i32, i64),
        headers: Option<OwnedHeaders>,
    ) -> OwnedMessage {
        OwnedMessage::new(
            value,
            key,
            "pages".into(),
            timestamp,
            partition,
            offset,
            headers,
        )
    }

    #[test]
    fn writes_what_prost_writes_for_the_converted_record() {
        let event = PageEvent {
            name: Cow::Borrowed("home"),
            user: Cow::Borrowed("ada"),
            date_ms: 1_700_000_000_123,
            duration_ms: 42,
        }
        .to_json();
        let odd_event = br#"{"name":"","user":"","date":-1500,"duration":-7}"#.to_vec();
        let escaped =
            br#"{"name":"a\"b\u00e9","user":"\n","date":"2024-01-02T03:04:05.678Z","duration":0}"#;
        let headers = || {
            OwnedHeaders::new()
                .insert(Header {
                    key: "contentType",
                    value: Some("application/json"),
                })
                .insert(Header::<&str> {
                    key: "empty",
                    value: None,
                })
                .insert(Header {
                    key: "",
                    value: Some(""),
                })
        };
        let big = vec![b'x'; 300_000];
        let cases = [
            message(
                Some(event.clone()),
                Some(b"k".to_vec()),
                Timestamp::CreateTime(1_000),
                (3, 17),
                Some(headers()),
            ),
            message(
                Some(odd_event),
                None,
                Timestamp::LogAppendTime(-1_234),
                (0, 0),
                None,
            ),
            message(
                None,
                Some(Vec::new()),
                Timestamp::NotAvailable,
                (0, 1),
                None,
            ),
            message(
                Some(Vec::new()),
                None,
                Timestamp::CreateTime(0),
                (7, 0),
                Some(OwnedHeaders::new()),
            ),
            message(
                Some(b"not json".to_vec()),
                None,
                Timestamp::CreateTime(i64::MAX),
                (i32::MAX, i64::MAX),
                None,
            ),
            message(
                Some(b" {\"name\": 1}".to_vec()),
                None,
                Timestamp::CreateTime(i64::MIN),
                (-1, -1),
                Some(headers()),
            ),
            message(
                Some(big),
                Some(vec![0; 200]),
                Timestamp::CreateTime(5),
                (1, 1 << 40),
                None,
            ),
            message(
                Some(escaped.to_vec()),
                None,
                Timestamp::CreateTime(5),
                (1, 2),
                None,
            ),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(wire(case), reference(case), "case {i}");
        }
        assert!(
            to_record(&cases[7]).page_event.is_some(),
            "the escaped event is one"
        );
    }

    #[test]
    fn decodes_back_into_the_converted_record() {
        let case = message(
            Some(b"{\"name\":\"a\",\"user\":\"b\",\"date\":5,\"duration\":6}".to_vec()),
            Some(b"key".to_vec()),
            Timestamp::CreateTime(1_700_000_000_000),
            (2, 9),
            None,
        );
        let decoded = proto::RecordBatch::decode(wire(&case).as_slice()).expect("decodes");
        assert_eq!(decoded.records, vec![to_record(&case)]);
        assert!(decoded.records[0].page_event.is_some());
    }
}
