//! Dead letters: where a stage puts a record it cannot process, so that one bad record never
//! blocks, freezes or restarts it.
//!
//! Named and labelled as Spring Cloud Stream's Kafka binder does (the framework of the seed
//! application): topic `error.<input topic>.<consumer group>`, the record's own key, value
//! and headers, plus `x-original-topic`, `x-original-partition`, `x-original-offset`,
//! `x-original-timestamp` and `x-exception-message`. Every added header value is UTF-8 text
//! (numbers in decimal, the timestamp in epoch milliseconds), so `kcat -f '%h'` shows them.

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use streamgate::proto;
use streamgate::topic::{InvalidTopicName, TopicName};

/// Longest `x-exception-message`, in bytes; longer reasons are cut on a character boundary.
const MAX_REASON_BYTES: usize = 1024;

/// The dead-letter topic of a stage reading `input` in consumer group `group` (both set by
/// the operator's flags).
pub fn topic(input: &TopicName, group: &str) -> Result<TopicName, InvalidTopicName> {
    TopicName::new(format!("error.{input}.{group}"))
}

/// The dead-letter topic of a Consume stream of `group` reading `input`:
/// `dlq.<length of input>.<input>.<group>`. Clients choose both names and either may hold
/// dots, so Spring's `error.<input>.<group>` is ambiguous between clients (`orders` with
/// group `eu.billing`, and `orders.eu` with group `billing`); the length says where the
/// topic ends, so no two streams of different topics or groups share a dead-letter topic,
/// and none shares one with the server's own stages.
pub fn consume_topic(input: &TopicName, group: &str) -> Result<TopicName, InvalidTopicName> {
    TopicName::new(format!("dlq.{}.{input}.{group}", input.as_str().len()))
}

/// A record on its way to the dead-letter topic: the original's key, value and headers, and
/// the headers that say where it came from and why it is here.
pub struct DeadLetter<'a> {
    /// The original record's key.
    pub key: Option<&'a [u8]>,
    /// The original record's value.
    pub value: Option<&'a [u8]>,
    /// The original's headers followed by the origin headers.
    pub headers: OwnedHeaders,
    /// The original record's timestamp, epoch milliseconds (kept on the dead letter).
    pub timestamp_ms: Option<i64>,
}

impl<'a> DeadLetter<'a> {
    /// The dead letter of `message`, refused because of `reason`.
    pub fn of<M: Message>(message: &'a M, reason: &str) -> Self {
        let original = message.headers();
        let count = original.map_or(0, |h| h.count());
        let mut headers = OwnedHeaders::new_with_capacity(count + 5);
        if let Some(original) = original {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let timestamp_ms = message.timestamp().to_millis();
        let origin = Origin {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms,
        };
        Self {
            key: message.key(),
            value: message.payload(),
            headers: origin.add_to(headers, reason),
            timestamp_ms,
        }
    }

    /// The dead letter of a record already converted for a client (Consume), refused
    /// because of `reason`.
    pub fn of_record(record: &'a proto::Record, reason: &str) -> Self {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 5);
        for header in &record.headers {
            headers = headers.insert(Header {
                key: &header.key,
                value: Some(&header.value[..]),
            });
        }
        let timestamp_ms = record
            .timestamp
            .as_ref()
            .and_then(streamgate::time::to_millis);
        let origin = Origin {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp_ms,
        };
        Self {
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: origin.add_to(headers, reason),
            timestamp_ms,
        }
    }
}

/// Where a dead letter came from.
struct Origin<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
}

impl Origin<'_> {
    /// `headers` followed by the origin headers and the reason.
    fn add_to(&self, mut headers: OwnedHeaders, reason: &str) -> OwnedHeaders {
        let timestamp = self
            .timestamp_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default();
        for (key, value) in [
            ("x-original-topic", self.topic),
            ("x-original-partition", &self.partition.to_string()),
            ("x-original-offset", &self.offset.to_string()),
            ("x-original-timestamp", &timestamp),
            ("x-exception-message", cut(reason, MAX_REASON_BYTES)),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        headers
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    use super::*;

    fn header(letter: &DeadLetter<'_>, key: &str) -> Option<String> {
        letter
            .headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn names_the_topic_as_spring_cloud_stream_does() {
        let input = TopicName::new("R2".to_owned()).expect("valid");
        assert_eq!(
            topic(&input, "streamgate-analytics")
                .expect("valid")
                .as_str(),
            "error.R2.streamgate-analytics"
        );
        assert!(topic(&input, "bad group").is_err());
    }

    /// The collision Spring's naming has between clients: two streams that differ in topic
    /// and group get different dead-letter topics.
    #[test]
    fn consume_dead_letter_topics_never_collide() {
        let name = |input: &str, group: &str| {
            let input = TopicName::new(input.to_owned()).expect("valid");
            consume_topic(&input, group)
                .expect("valid")
                .as_str()
                .to_owned()
        };
        assert_eq!(name("orders", "eu.billing"), "dlq.6.orders.eu.billing");
        assert_eq!(name("orders.eu", "billing"), "dlq.9.orders.eu.billing");
        let pairs = [
            ("a", "b.c.d"),
            ("a.b", "c.d"),
            ("a.b.c", "d"),
            ("R2", "streamgate-transform"),
        ];
        let names: std::collections::HashSet<_> = pairs.iter().map(|(t, g)| name(t, g)).collect();
        assert_eq!(names.len(), pairs.len());
        assert!(!names.contains("error.R2.streamgate-transform"));
    }

    #[test]
    fn keeps_the_record_and_adds_its_origin_and_reason() {
        let own = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let message = OwnedMessage::new(
            Some(b"{\"bad\"".to_vec()),
            Some(b"P1".to_vec()),
            "R2".into(),
            Timestamp::CreateTime(1_662_925_267_331),
            2,
            1234,
            Some(own),
        );
        let reason = format!("not a PageEvent: {}", "é".repeat(1000));
        let letter = DeadLetter::of(&message, &reason);
        assert_eq!(letter.key, Some(&b"P1"[..]));
        assert_eq!(letter.value, Some(&b"{\"bad\""[..]));
        assert_eq!(letter.timestamp_ms, Some(1_662_925_267_331));
        assert_eq!(
            header(&letter, "content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(header(&letter, "x-original-topic").as_deref(), Some("R2"));
        assert_eq!(
            header(&letter, "x-original-partition").as_deref(),
            Some("2")
        );
        assert_eq!(
            header(&letter, "x-original-offset").as_deref(),
            Some("1234")
        );
        assert_eq!(
            header(&letter, "x-original-timestamp").as_deref(),
            Some("1662925267331")
        );
        let message = header(&letter, "x-exception-message").expect("reason");
        assert!(message.starts_with("not a PageEvent: é") && message.len() <= MAX_REASON_BYTES);
    }
}
