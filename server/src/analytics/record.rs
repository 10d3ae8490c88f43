//! The R4 record: one page's count in one window, for one partition of R2.
//!
//! Key `page@window_start_ms@partition`; JSON value
//! `{"page":"P1","window_start":"2026-…Z","window_end":"…","window_start_ms":…,
//! "window_end_ms":…,"partition":0,"input_offset":1234,"count":12,"final":false}`.
//! `input_offset` is the R2 offset up to which (exclusive) the count is complete; it is what
//! makes the records usable for exactly-once restore and for summing across workers.

use serde::{Deserialize, Serialize};
use streamgate::page_event::format_date;

/// One R4 record's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRecord {
    /// Page name.
    pub page: String,
    /// Window start, RFC 3339 (for people reading the topic).
    pub window_start: String,
    /// Window end, RFC 3339.
    pub window_end: String,
    /// Window start, epoch ms (inclusive).
    pub window_start_ms: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end_ms: i64,
    /// The R2 partition this count covers.
    pub partition: i32,
    /// Every R2 record of `partition` below this offset is counted.
    pub input_offset: i64,
    /// Records of the page in the window.
    pub count: u64,
    /// The window is closed: this is the last record for this key.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl StatsRecord {
    /// A record for `page` in `[start_ms, end_ms)`.
    pub fn new(
        page: String,
        start_ms: i64,
        end_ms: i64,
        partition: i32,
        input_offset: i64,
        count: u64,
        is_final: bool,
    ) -> Self {
        Self {
            page,
            window_start: format_date(start_ms),
            window_end: format_date(end_ms),
            window_start_ms: start_ms,
            window_end_ms: end_ms,
            partition,
            input_offset,
            count,
            is_final,
        }
    }

    /// The record key.
    pub fn key(&self) -> String {
        format!("{}@{}@{}", self.page, self.window_start_ms, self.partition)
    }

    /// The JSON value.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("plain fields serialize"))
    }

    /// Parses a value; `None` for anything else (R4 is a topic anyone can write to).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let record: Self = serde_json::from_slice(value).ok()?;
        (record.window_end_ms > record.window_start_ms && record.partition >= 0).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_documented_form() {
        let record = StatsRecord::new(
            "P1".into(),
            1_662_925_265_000,
            1_662_925_270_000,
            2,
            1234,
            12,
            true,
        );
        let json: serde_json::Value = serde_json::from_slice(&record.to_json()).expect("json");
        assert_eq!(json["final"], true);
        assert_eq!(json["window_start"], "2022-09-11T19:41:05.000+00:00");
        assert_eq!(json["input_offset"], 1234);
        assert_eq!(record.key(), "P1@1662925265000@2");
        assert_eq!(StatsRecord::parse(&record.to_json()), Some(record));
        assert_eq!(StatsRecord::parse(b"{}"), None);
    }
}
