//! Unit tests of `wire`.

use std::borrow::Cow;

use prost::Message as _;
use rdkafka::Timestamp;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use streamgate::page_event::PageEvent;
use streamgate::proto;

use super::{RecordMask, WireRecord};
use crate::gateway::subscribe::record::{sample_headers, to_record};

/// What prost writes for the `Record` that `to_record` builds, as a batch entry.
fn reference(message: &OwnedMessage) -> Vec<u8> {
    reference_masked(message, RecordMask::ALL)
}

/// The same with the fields `mask` leaves out unset.
fn reference_masked(message: &OwnedMessage, mask: RecordMask) -> Vec<u8> {
    let full = to_record(message);
    let record = proto::Record {
        topic: if mask.topic {
            full.topic
        } else {
            String::new()
        },
        partition: if mask.partition { full.partition } else { 0 },
        offset: if mask.offset { full.offset } else { 0 },
        timestamp: full.timestamp.filter(|_| mask.timestamp),
        timestamp_type: if mask.timestamp_type {
            full.timestamp_type
        } else {
            0
        },
        key: full.key.filter(|_| mask.key),
        headers: if mask.headers {
            full.headers
        } else {
            Vec::new()
        },
        value: full.value.filter(|_| mask.value),
        page_event: full.page_event.filter(|_| mask.page_event),
        decoded: None,
        decode_error: String::new(),
    };
    let batch = proto::RecordBatch {
        records: vec![record],
        ..Default::default()
    };
    batch.encode_to_vec()
}

fn wire(message: &OwnedMessage) -> Vec<u8> {
    wire_masked(message, RecordMask::ALL)
}

fn wire_masked(message: &OwnedMessage, mask: RecordMask) -> Vec<u8> {
    let record = WireRecord::new(message, mask);
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
        sample_headers().insert(Header {
            key: "",
            value: Some(""),
        })
    };
    let big = vec![b'x'; 300_000];
    let zero_event = br#"{"name":"n","user":"u","date":0,"duration":0}"#.to_vec();
    let empty_headers = (0..10_000).fold(OwnedHeaders::new(), |headers, _| {
        headers.insert(Header::<&str> {
            key: "",
            value: None,
        })
    });
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
        message(
            Some(zero_event),
            None,
            Timestamp::CreateTime(0),
            (0, 0),
            Some(empty_headers),
        ),
    ];
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(wire(case), reference(case), "case {i}");
    }
    assert!(
        to_record(&cases[7]).page_event.is_some(),
        "the escaped event is one"
    );
    let zero = to_record(&cases[8]);
    assert_eq!(zero.headers.len(), 10_000);
    assert_eq!(zero.page_event.and_then(|e| e.duration_ms), Some(0));
}

/// A small deterministic generator (xorshift), so that a failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        match self.below(5) {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(
                PageEvent {
                    name: Cow::Owned("p".repeat(self.below(300) as usize)),
                    user: Cow::Owned("u".repeat(self.below(3) as usize)),
                    date_ms: self.next() as i64 % 4_000_000_000_000,
                    duration_ms: self.next() as i64 % 3 - 1,
                }
                .to_json(),
            ),
            _ => Some((0..self.below(200)).map(|_| self.next() as u8).collect()),
        }
    }

    fn message(&mut self) -> OwnedMessage {
        let timestamp = match self.below(3) {
            0 => Timestamp::NotAvailable,
            1 => Timestamp::CreateTime(self.next() as i64 >> self.below(64)),
            _ => Timestamp::LogAppendTime(-(self.next() as i64 >> 20)),
        };
        let headers = (self.below(3) > 0).then(|| {
            (0..self.below(4)).fold(OwnedHeaders::new(), |headers, _| {
                let key = "k".repeat(self.below(3) as usize);
                let value = self.bytes();
                headers.insert(Header {
                    key: &key,
                    value: value.as_deref(),
                })
            })
        });
        let partition = (self.next() as i32) >> self.below(32);
        let offset = (self.next() as i64) >> self.below(64);
        message(
            self.bytes(),
            self.bytes(),
            timestamp,
            (partition, offset),
            headers,
        )
    }
}

#[test]
fn random_records_are_written_as_prost_writes_them() {
    let mut random = Random(0x5eed_cafe_f00d_d00d);
    for i in 0..20_000 {
        let case = random.message();
        assert_eq!(wire(&case), reference(&case), "case {i}: {case:?}");
    }
}

#[test]
fn random_records_under_random_read_masks_are_written_as_prost_writes_them_masked() {
    let mut random = Random(0xface_b00c_0ddb_a115);
    for i in 0..20_000 {
        let case = random.message();
        let bits = random.next();
        let bit = |n: u32| bits & (1 << n) != 0;
        let mask = RecordMask {
            topic: bit(0),
            partition: bit(1),
            offset: bit(2),
            timestamp: bit(3),
            timestamp_type: bit(4),
            key: bit(5),
            headers: bit(6),
            value: bit(7),
            page_event: bit(8),
            // Decoded fields are appended by the session (`with_extra`), not read here.
            decoded: false,
            decode_error: false,
        };
        assert_eq!(
            wire_masked(&case, mask),
            reference_masked(&case, mask),
            "case {i}: {mask:?} {case:?}"
        );
    }
}

#[test]
fn a_page_event_is_sent_without_its_value_and_the_value_without_its_page_event() {
    let case = message(
        Some(b"{\"name\":\"a\",\"user\":\"b\",\"date\":5,\"duration\":6}".to_vec()),
        None,
        Timestamp::CreateTime(1),
        (0, 1),
        None,
    );
    let only = |page_event, value| RecordMask {
        page_event,
        value,
        ..RecordMask::ALL
    };
    let decode = |mask| {
        let batch = proto::RecordBatch::decode(wire_masked(&case, mask).as_slice());
        batch.expect("decodes").records.remove(0)
    };
    let event = decode(only(true, false));
    assert!(event.page_event.is_some() && event.value.is_none());
    let value = decode(only(false, true));
    assert!(value.page_event.is_none() && value.value.is_some());
    assert_eq!(value.offset, 1, "the other fields stay");
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
