//! Converting one Kafka record into the API's `Record`: timestamp and its type, key, headers,
//! value, and the decoded `PageEvent` when the value is one. Pure: no I/O, no state.

use rdkafka::message::{Headers, Message};
use streamgate::page_event::PageEvent;
use streamgate::proto;
use streamgate::time::from_millis;

/// What one header costs in memory once converted, beyond its bytes (the `Header` struct,
/// its `String` and `Bytes` handles and the allocations behind them).
const HEADER_OVERHEAD: usize = 64;
/// What one record costs in memory beyond its key, value and headers.
const RECORD_OVERHEAD: usize = 256;

/// The memory a converted record holds, as counted against a subscription's byte budget:
/// its bytes plus the per-header and per-record overhead, so that a record of many empty
/// headers (cheap on the wire, ~50× larger in memory) costs what it really costs.
pub fn cost(record: &proto::Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.len() + HEADER_OVERHEAD)
        .sum();
    let event = record
        .page_event
        .as_ref()
        .map_or(0, |e| e.name.len() + e.user.as_ref().map_or(0, String::len));
    RECORD_OVERHEAD
        + record.topic.len()
        + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + event
        + headers
}

/// Converts a Kafka record into the API's Record, decoding a PageEvent when it is one.
///
/// Generic over the message type so that tests can build one; the server only ever passes
/// a `BorrowedMessage`.
pub fn to_record<M: Message>(message: &M) -> proto::Record {
    let (timestamp, timestamp_type) = match message.timestamp() {
        rdkafka::Timestamp::NotAvailable => (None, proto::TimestampType::Unspecified),
        rdkafka::Timestamp::CreateTime(ms) => {
            (Some(from_millis(ms)), proto::TimestampType::CreateTime)
        }
        rdkafka::Timestamp::LogAppendTime(ms) => {
            (Some(from_millis(ms)), proto::TimestampType::LogAppendTime)
        }
    };
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| proto::Header {
                    key: h.key.to_owned(),
                    value: h
                        .value
                        .map(bytes::Bytes::copy_from_slice)
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let page_event = message
        .payload()
        // Only a JSON object can be one: values that cannot are not parsed at all (a failed
        // parse allocates its error).
        .filter(|v| v.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
        .and_then(|v| PageEvent::decode(v).ok())
        .map(|e| proto::PageEvent {
            name: e.name.into_owned(),
            user: Some(e.user.into_owned()),
            date: Some(from_millis(e.date_ms)),
            duration_ms: Some(e.duration_ms),
        });
    proto::Record {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp,
        timestamp_type: timestamp_type as i32,
        key: message.key().map(bytes::Bytes::copy_from_slice),
        headers,
        value: message.payload().map(bytes::Bytes::copy_from_slice),
        page_event,
        decoded: None,
        decode_error: String::new(),
    }
}

/// Two headers for tests: `contentType: application/json`, then `empty` without a value.
#[cfg(test)]
pub(super) fn sample_headers() -> rdkafka::message::OwnedHeaders {
    use rdkafka::message::{Header, OwnedHeaders};
    OwnedHeaders::new()
        .insert(Header {
            key: "contentType",
            value: Some("application/json"),
        })
        .insert(Header::<&str> {
            key: "empty",
            value: None,
        })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;
    use streamgate::page_event::PageEvent;
    use streamgate::proto;
    use streamgate::time::from_millis;

    use super::{HEADER_OVERHEAD, RECORD_OVERHEAD, cost, sample_headers, to_record};

    #[test]
    fn many_empty_headers_cost_what_they_hold_in_memory() {
        let record = proto::Record {
            headers: vec![proto::Header::default(); 550_000],
            ..Default::default()
        };
        // Cheap on the wire (about 2 bytes each), at least 64 bytes each here.
        assert!(cost(&record) >= 550_000 * HEADER_OVERHEAD);
        assert!(cost(&proto::Record::default()) >= RECORD_OVERHEAD);
    }

    #[test]
    fn copies_the_record_and_decodes_a_page_event() {
        let event = PageEvent {
            name: Cow::Borrowed("home"),
            user: Cow::Borrowed("ada"),
            date_ms: 1_700_000_000_123,
            duration_ms: 42,
        };
        let message = OwnedMessage::new(
            Some(event.to_json()),
            Some(b"k".to_vec()),
            "pages".into(),
            Timestamp::LogAppendTime(1_000),
            3,
            17,
            Some(sample_headers()),
        );
        let record = to_record(&message);
        assert_eq!(record.topic, "pages");
        assert_eq!((record.partition, record.offset), (3, 17));
        assert_eq!(record.timestamp, Some(from_millis(1_000)));
        assert_eq!(
            record.timestamp_type,
            proto::TimestampType::LogAppendTime as i32
        );
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.headers.len(), 2);
        assert_eq!(record.headers[0].key, "contentType");
        assert_eq!(&record.headers[0].value[..], b"application/json");
        assert!(record.headers[1].value.is_empty());
        let page = record.page_event.expect("a PageEvent value is decoded");
        assert_eq!(page.name, "home");
        assert_eq!(page.user.as_deref(), Some("ada"));
        assert_eq!(page.date, Some(from_millis(1_700_000_000_123)));
        assert_eq!(page.duration_ms, Some(42));
    }

    #[test]
    fn a_record_without_timestamp_or_page_event() {
        let message = OwnedMessage::new(
            Some(b"not json".to_vec()),
            None,
            "raw".into(),
            Timestamp::NotAvailable,
            0,
            0,
            None,
        );
        let record = to_record(&message);
        assert_eq!(record.timestamp, None);
        assert_eq!(
            record.timestamp_type,
            proto::TimestampType::Unspecified as i32
        );
        assert_eq!(record.key, None);
        assert!(record.headers.is_empty());
        assert_eq!(record.value.as_deref(), Some(&b"not json"[..]));
        assert!(record.page_event.is_none());
    }
}
