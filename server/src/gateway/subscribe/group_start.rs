//! Where a group stream starts in a partition it was just assigned, and which start it
//! remembers for the group. Pure: the session looks up the committed offset and the
//! watermarks, this module only decides.
//!
//! The rules:
//! - A committed offset is kept as it is, only raised to the low watermark (records below it
//!   were deleted). It is never clamped down to the high watermark, which some brokers
//!   (Tansu) under-report.
//! - A partition without a commit starts at the fallback edge of the stream (low for
//!   `earliest`, high for `latest`), and that start is stored for the group, as the Java
//!   consumer's auto-commit does: otherwise a partition that delivered nothing keeps no
//!   commit, and the group's next stream would fall back to `latest` and skip its records.
//! - When the watermarks are unknown (their lookup failed), nothing is stored: librdkafka's
//!   `auto.offset.reset` picks the start, and the stream announces what it knows — the
//!   committed offset, or [`UNKNOWN`] — with [`UNKNOWN`] watermarks.

use rdkafka::Offset;

use super::start::Start;

/// What an announced offset or watermark is when the gateway does not know it.
pub const UNKNOWN: i64 = -1;

/// Where a group stream starts in a partition that has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The oldest stored record (low watermark).
    Earliest,
    /// The next record written (high watermark).
    Latest,
}

impl Fallback {
    /// The fallback of a stream asked to start at `start`. Only `earliest` falls back to the
    /// low watermark; every other start was committed for the group before it subscribed,
    /// so a partition still without a commit starts at the end, as `auto.offset.reset`
    /// (`latest`) would.
    pub fn of(start: Start) -> Self {
        if start == Start::Earliest {
            Fallback::Earliest
        } else {
            Fallback::Latest
        }
    }
}

/// A partition's watermarks: `[low, high)` holds its stored records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Offset of the oldest stored record.
    pub low: i64,
    /// Offset the next written record will get.
    pub high: i64,
}

/// The decision for one assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStart {
    /// The start offset to announce; [`UNKNOWN`] when neither a commit nor the watermarks
    /// tell it.
    pub start_offset: i64,
    /// The low watermark to announce; [`UNKNOWN`] when its lookup failed.
    pub low_watermark: i64,
    /// The high watermark to announce; [`UNKNOWN`] when its lookup failed.
    pub high_watermark: i64,
    /// The offset to store for the group (committed with its next commit), if any.
    pub store: Option<i64>,
}

/// Decides where a group stream starts in one partition, given the group's `committed`
/// offset there (anything but `Offset::Offset` means "no commit"), the partition's
/// `watermarks` (`None` if unknown) and the stream's `fallback` edge.
pub fn decide(committed: Offset, watermarks: Option<Watermarks>, fallback: Fallback) -> GroupStart {
    let committed = match committed {
        Offset::Offset(n) => Some(n),
        _ => None,
    };
    let Some(Watermarks { low, high }) = watermarks else {
        return GroupStart {
            start_offset: committed.unwrap_or(UNKNOWN),
            low_watermark: UNKNOWN,
            high_watermark: UNKNOWN,
            store: None,
        };
    };
    let (start_offset, store) = match (committed, fallback) {
        (Some(n), _) => (n.max(low), None),
        (None, Fallback::Earliest) => (low, Some(low)),
        (None, Fallback::Latest) => (high, Some(high)),
    };
    GroupStart {
        start_offset,
        low_watermark: low,
        high_watermark: high,
        store,
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Offset;

    use super::{Fallback, GroupStart, UNKNOWN, Watermarks, decide};
    use crate::gateway::subscribe::start::Start;

    const MARKS: Option<Watermarks> = Some(Watermarks { low: 10, high: 20 });

    fn known(start_offset: i64, store: Option<i64>) -> GroupStart {
        GroupStart {
            start_offset,
            low_watermark: 10,
            high_watermark: 20,
            store,
        }
    }

    #[test]
    fn a_committed_offset_is_kept_and_not_stored() {
        for fallback in [Fallback::Earliest, Fallback::Latest] {
            assert_eq!(decide(Offset::Offset(15), MARKS, fallback), known(15, None));
            assert_eq!(decide(Offset::Offset(10), MARKS, fallback), known(10, None));
        }
    }

    #[test]
    fn a_committed_offset_above_the_high_watermark_is_not_clamped_down() {
        // Tansu under-reports high watermarks: trust the commit.
        assert_eq!(
            decide(Offset::Offset(25), MARKS, Fallback::Latest),
            known(25, None)
        );
    }

    #[test]
    fn a_committed_offset_below_the_low_watermark_is_raised_to_it() {
        assert_eq!(
            decide(Offset::Offset(3), MARKS, Fallback::Latest),
            known(10, None)
        );
        assert_eq!(
            decide(Offset::Offset(0), MARKS, Fallback::Earliest),
            known(10, None)
        );
    }

    #[test]
    fn without_a_commit_earliest_starts_at_low_and_stores_it() {
        for none in [
            Offset::Invalid,
            Offset::Stored,
            Offset::Beginning,
            Offset::End,
        ] {
            assert_eq!(decide(none, MARKS, Fallback::Earliest), known(10, Some(10)));
        }
    }

    #[test]
    fn without_a_commit_latest_starts_at_high_and_stores_it() {
        assert_eq!(
            decide(Offset::Invalid, MARKS, Fallback::Latest),
            known(20, Some(20))
        );
    }

    #[test]
    fn unknown_watermarks_without_a_commit_store_nothing() {
        // The bug this guards against: failed lookups used to read as (0, 0), so `latest`
        // stored offset 0 and the group's next stream replayed the whole partition.
        for fallback in [Fallback::Earliest, Fallback::Latest] {
            assert_eq!(
                decide(Offset::Invalid, None, fallback),
                GroupStart {
                    start_offset: UNKNOWN,
                    low_watermark: UNKNOWN,
                    high_watermark: UNKNOWN,
                    store: None,
                }
            );
        }
    }

    #[test]
    fn unknown_watermarks_keep_a_commit_as_it_is() {
        assert_eq!(
            decide(Offset::Offset(7), None, Fallback::Latest),
            GroupStart {
                start_offset: 7,
                low_watermark: UNKNOWN,
                high_watermark: UNKNOWN,
                store: None,
            }
        );
    }

    #[test]
    fn only_earliest_falls_back_to_the_low_watermark() {
        assert_eq!(Fallback::of(Start::Earliest), Fallback::Earliest);
        assert_eq!(Fallback::of(Start::Latest), Fallback::Latest);
        assert_eq!(Fallback::of(Start::Offset(3)), Fallback::Latest);
        assert_eq!(Fallback::of(Start::FromEnd(3)), Fallback::Latest);
        assert_eq!(Fallback::of(Start::Timestamp(0)), Fallback::Latest);
    }
}
