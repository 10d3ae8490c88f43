//! Start positions: turning earliest / latest / offset / from-end / timestamp into one
//! concrete offset per partition.
//!
//! Timestamps are resolved by [`TimestampSearch`](crate::kafka::TimestampSearch), shared with
//! the analytics worker's restore: the broker's answer, checked, else a binary search.

/// A requested start position, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest stored record.
    Earliest,
    /// The next record written.
    Latest,
    /// An absolute offset, clamped into the partition.
    Offset(i64),
    /// This many records before the end.
    FromEnd(i64),
    /// The first record at or after this epoch-millisecond instant.
    Timestamp(i64),
}

impl Start {
    /// Whether this position is a plain edge (which a group applies only without commits).
    pub fn is_edge(self) -> bool {
        matches!(self, Start::Earliest | Start::Latest)
    }

    /// The offset for a partition holding `[low, high)`, for every position but timestamps.
    pub fn resolve_simple(self, low: i64, high: i64) -> Option<i64> {
        match self {
            Start::Earliest => Some(low),
            Start::Latest => Some(high),
            Start::Offset(n) => Some(n.clamp(low, high)),
            Start::FromEnd(n) => Some(high.saturating_sub(n).clamp(low, high)),
            Start::Timestamp(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Start;

    #[test]
    fn simple_positions_clamp_into_the_partition() {
        assert_eq!(Start::Earliest.resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Latest.resolve_simple(5, 10), Some(10));
        assert_eq!(Start::Offset(7).resolve_simple(5, 10), Some(7));
        assert_eq!(Start::Offset(2).resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Offset(99).resolve_simple(5, 10), Some(10));
        assert_eq!(Start::FromEnd(3).resolve_simple(5, 10), Some(7));
        assert_eq!(Start::FromEnd(30).resolve_simple(5, 10), Some(5));
        assert_eq!(Start::Timestamp(0).resolve_simple(5, 10), None);
    }
}
