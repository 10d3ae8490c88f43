//! The records a subscribe run preloads: raw filler of `--size` bytes, or the seed's
//! PageEvents as JSON for a filter to look into (`--values page-events`), and the end
//! markers that close each partition of a filtered run's topic ([`crate::scan`]).
//!
//! The PageEvents are a function of their sequence number (a SplitMix64 hash of it), not of
//! a random generator: every run preloads the same records, so two runs of one filter
//! match the same ones, and `value.duration < 90` matches 1 % of them on every topic.

use bytes::Bytes;
use streamgate::proto::{Header, PublishRequest, publish_request};

use crate::args::Values;

/// The key of the record that ends each partition of a filtered run's topic.
pub const END_KEY: &str = "streamgate-bench-end";

/// The seed's pages and users, each picked with equal chances.
const PAGES: [&str; 2] = ["P1", "P2"];
const USERS: [&str; 2] = ["U1", "U2"];

/// The longest visit, in milliseconds: durations are uniform in 0..=MAX_DURATION_MS, as
/// the seed's supplier draws them (`--supplier-duration 0..9000`).
pub const MAX_DURATION_MS: u64 = 9000;

/// Every PageEvent's date: a fixed instant, in the seed's format.
const DATE: &str = "2026-12-08T00:00:00.000+00:00";

/// One PageEvent of the preload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEvent {
    /// The page, also the record's key.
    pub name: &'static str,
    /// The user.
    pub user: &'static str,
    /// The visit's duration in milliseconds, 0..=9000.
    pub duration: u64,
}

impl PageEvent {
    /// The `sequence`-th PageEvent of a preload.
    pub fn nth(sequence: u64) -> Self {
        let hash = splitmix64(sequence);
        Self {
            name: PAGES[usize::from(hash >> 63 == 1)],
            user: USERS[usize::from((hash >> 62) & 1 == 1)],
            // The low bits: a modulo bias of 9001 / 2^64, nothing a filter could see.
            duration: hash % (MAX_DURATION_MS + 1),
        }
    }

    /// The value as the seed writes it.
    pub fn json(self) -> String {
        let Self {
            name,
            user,
            duration,
        } = self;
        format!(r#"{{"name":"{name}","user":"{user}","date":"{DATE}","duration":{duration}}}"#)
    }
}

/// About the size of a PageEvent value: one with a four-digit duration, as nine in ten are
/// (the report's MB/s and "records of N bytes").
pub fn page_event_size() -> usize {
    PageEvent {
        name: PAGES[0],
        user: USERS[0],
        duration: 1000,
    }
    .json()
    .len()
}

/// SplitMix64's output function: a well-mixed 64-bit hash of `n`.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The requests a PublishStream of the run sends: the same raw value again and again (the
/// publish workloads, a raw preload), or the preload's PageEvents by sequence number.
#[derive(Debug, Clone)]
pub struct Feed {
    topic: String,
    values: Values,
    raw: Bytes,
    partitions: i32,
}

impl Feed {
    /// Requests for `topic`: `raw` each time, or PageEvents spread over `partitions`.
    pub fn new(topic: &str, values: Values, raw: Bytes, partitions: i32) -> Self {
        Self {
            topic: topic.to_owned(),
            values,
            raw,
            partitions: partitions.max(1),
        }
    }

    /// The `sequence`-th request.
    pub fn request(&self, sequence: u64) -> PublishRequest {
        match self.values {
            Values::Raw => crate::gateway::request(&self.topic, self.raw.clone()),
            Values::PageEvents => {
                let event = PageEvent::nth(sequence);
                // Keyed by page as the seed's records are, but spread over the partitions
                // in turn: two keys alone would fill two partitions and leave the rest empty.
                let partition = sequence % u64::from(self.partitions.unsigned_abs());
                PublishRequest {
                    topic: self.topic.clone(),
                    key: Some(Bytes::from_static(event.name.as_bytes())),
                    headers: vec![json_header()],
                    payload: Some(publish_request::Payload::Value(event.json().into())),
                    partition: i32::try_from(partition).ok(),
                    timestamp: None,
                }
            }
        }
    }
}

/// `content-type: application/json`, as the seed's supplier writes on every PageEvent.
fn json_header() -> Header {
    Header {
        key: "content-type".to_owned(),
        value: Bytes::from_static(streamgate::page_event::CONTENT_TYPE.as_bytes()),
    }
}

/// The end marker of `partition`: keyed [`END_KEY`], written there after every preloaded
/// record has been acknowledged, so it is the partition's last record. Its value is an
/// empty JSON object.
pub fn end_marker(topic: &str, partition: i32) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        key: Some(Bytes::from_static(END_KEY.as_bytes())),
        headers: vec![json_header()],
        payload: Some(publish_request::Payload::Value(Bytes::from_static(b"{}"))),
        partition: Some(partition),
        timestamp: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_events_are_the_seed_s_json_and_the_same_on_every_run() {
        let event = PageEvent {
            name: "P1",
            user: "U2",
            duration: 4521,
        };
        assert_eq!(
            event.json(),
            r#"{"name":"P1","user":"U2","date":"2026-12-08T00:00:00.000+00:00","duration":4521}"#
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&PageEvent::nth(7).json()).expect("JSON");
        assert_eq!(parsed["duration"], PageEvent::nth(7).duration);
        assert_eq!(PageEvent::nth(12345), PageEvent::nth(12345));
        assert_ne!(PageEvent::nth(1), PageEvent::nth(2));
        assert_eq!(page_event_size(), event.json().len());
    }

    #[test]
    fn durations_are_uniform_so_a_filter_matches_the_share_it_names() {
        const N: u64 = 200_000;
        let events: Vec<PageEvent> = (0..N).map(PageEvent::nth).collect();
        let share = |keep: &dyn Fn(&PageEvent) -> bool| {
            events.iter().filter(|e| keep(e)).count() as f64 / N as f64
        };
        assert!(events.iter().all(|e| e.duration <= MAX_DURATION_MS));
        // `value.duration < 90`: 90 of 9001 values, 1.0 %.
        let low = share(&|e| e.duration < 90);
        assert!((0.009..0.011).contains(&low), "{low}");
        // `value.duration > 100`: 8900 of 9001, 98.9 %.
        let high = share(&|e| e.duration > 100);
        assert!((0.985..0.992).contains(&high), "{high}");
        // `key == 'P1'`, and either user: about half each.
        let p1 = share(&|e| e.name == "P1");
        let u1 = share(&|e| e.user == "U1");
        assert!(
            (0.49..0.51).contains(&p1) && (0.49..0.51).contains(&u1),
            "{p1} {u1}"
        );
        let both = share(&|e| e.name == "P1" && e.user == "U1");
        assert!(
            (0.24..0.26).contains(&both),
            "page and user independent: {both}"
        );
    }

    #[test]
    fn page_event_records_are_keyed_by_page_and_spread_over_the_partitions() {
        let feed = Feed::new("t", Values::PageEvents, Bytes::new(), 3);
        let partitions: Vec<Option<i32>> = (0..6).map(|n| feed.request(n).partition).collect();
        assert_eq!(partitions, [0, 1, 2, 0, 1, 2].map(Some));
        let request = feed.request(4);
        let event = PageEvent::nth(4);
        assert_eq!(request.key.as_deref(), Some(event.name.as_bytes()));
        assert_eq!(
            request.payload,
            Some(publish_request::Payload::Value(event.json().into()))
        );
        assert_eq!(request.headers[0].key, "content-type");

        // Raw: the filler, no key, the partition left to the server, as before.
        let raw = Feed::new("t", Values::Raw, Bytes::from_static(b"xx"), 3).request(4);
        assert_eq!(raw, crate::gateway::request("t", Bytes::from_static(b"xx")));
        assert!(raw.key.is_none() && raw.partition.is_none());
    }

    #[test]
    fn an_end_marker_is_keyed_and_placed_in_its_partition() {
        let marker = end_marker("t", 2);
        assert_eq!(marker.key.as_deref(), Some(END_KEY.as_bytes()));
        assert_eq!(marker.partition, Some(2));
        assert_eq!(marker.topic, "t");
    }
}
