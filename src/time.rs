//! Checked conversions between Kafka's epoch milliseconds and protobuf's `Timestamp` and
//! `Duration`, for the server and every Rust client.
//!
//! Every value here may come from a client or a broker, so nothing multiplies unchecked:
//! a conversion that cannot be exact (overflow, out-of-range nanos, mixed signs) answers
//! `None` instead of wrapping or panicking.

use prost_types::{Duration, Timestamp};

const NANOS_PER_MILLI: i64 = 1_000_000;
const MILLIS_PER_SECOND: i64 = 1_000;

/// Epoch milliseconds as a protobuf timestamp. Total over `i64`: the seconds are floored,
/// so the nanos are always in `0..1e9` as the protobuf spec requires.
pub fn from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(MILLIS_PER_SECOND),
        nanos: nanos_of(millis.rem_euclid(MILLIS_PER_SECOND)),
    }
}

/// A protobuf timestamp as epoch milliseconds (sub-millisecond nanos are dropped); `None`
/// if the nanos are out of range or the instant does not fit in `i64` milliseconds.
pub fn to_millis(ts: &Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    // In i128, so an instant just above i64::MIN ms (whose seconds alone overflow when
    // multiplied) still converts.
    let millis = i128::from(ts.seconds) * i128::from(MILLIS_PER_SECOND)
        + i128::from(ts.nanos) / i128::from(NANOS_PER_MILLI);
    i64::try_from(millis).ok()
}

/// Milliseconds as a protobuf duration; seconds and nanos carry the same sign, as the
/// protobuf spec requires. Total over `i64`.
pub fn duration_from_millis(millis: i64) -> Duration {
    Duration {
        // Truncating division keeps both parts on the sign of `millis`.
        seconds: millis / MILLIS_PER_SECOND,
        nanos: nanos_of(millis % MILLIS_PER_SECOND),
    }
}

/// A protobuf duration as milliseconds; `None` for nanos outside ±999 999 999, for parts
/// of opposite signs, or when the value does not fit in `i64` milliseconds.
pub fn duration_to_millis(duration: &Duration) -> Option<i64> {
    let (seconds, nanos) = (duration.seconds, i64::from(duration.nanos));
    if nanos.abs() >= 1_000_000_000 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0) {
        return None;
    }
    seconds
        .checked_mul(MILLIS_PER_SECOND)?
        .checked_add(nanos / NANOS_PER_MILLI)
}

/// A standard duration as a protobuf duration, saturating at `i64::MAX` seconds.
pub fn duration_from_std(duration: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        // Below 1e9 by definition, so it fits.
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf duration as a standard one; `None` for negative or malformed durations.
pub fn duration_to_std(duration: &Duration) -> Option<std::time::Duration> {
    let seconds = u64::try_from(duration.seconds).ok()?;
    let nanos = u32::try_from(duration.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(std::time::Duration::new(seconds, nanos))
}

/// A standard duration in whole milliseconds, saturating at `i64::MAX`.
pub fn millis_of_std(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wall clock, epoch milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `millis` is in `-999..=999` here, so the product fits in `i32`.
fn nanos_of(millis: i64) -> i32 {
    i32::try_from(millis * NANOS_PER_MILLI).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_1970_and_the_extremes() {
        for ms in [0, 1, 999, 1_662_925_267_331, -1, -1001, i64::MIN, i64::MAX] {
            let ts = from_millis(ms);
            assert!((0..1_000_000_000).contains(&ts.nanos), "{ms}: {ts:?}");
            assert_eq!(to_millis(&ts), Some(ms), "{ms}");
        }
        assert_eq!(
            from_millis(-1),
            Timestamp {
                seconds: -1,
                nanos: 999_000_000
            }
        );
    }

    #[test]
    fn timestamps_reject_bad_nanos_and_overflow() {
        for (seconds, nanos) in [
            (0, -1),
            (0, 1_000_000_000),
            (i64::MAX, 0),
            (i64::MIN, 0),
            (i64::MAX / 1000 + 1, 0),
        ] {
            assert_eq!(
                to_millis(&Timestamp { seconds, nanos }),
                None,
                "{seconds} {nanos}"
            );
        }
    }

    #[test]
    fn durations_round_trip_with_one_sign() {
        for ms in [0, 1, -1, 1500, -1500, i64::MIN, i64::MAX] {
            let d = duration_from_millis(ms);
            assert!(d.seconds == 0 || d.nanos == 0 || (d.seconds > 0) == (d.nanos > 0));
            assert_eq!(duration_to_millis(&d), Some(ms), "{ms}");
        }
    }

    #[test]
    fn durations_reject_mixed_signs_bad_nanos_and_overflow() {
        for (seconds, nanos) in [
            (1, -1),
            (-1, 1),
            (0, 1_000_000_000),
            (0, -1_000_000_000),
            (i64::MAX, 0),
            (i64::MIN, 0),
        ] {
            assert_eq!(
                duration_to_millis(&Duration { seconds, nanos }),
                None,
                "{seconds} {nanos}"
            );
        }
    }

    #[test]
    fn standard_durations_convert_both_ways() {
        let d = std::time::Duration::from_millis(2500);
        assert_eq!(
            duration_from_std(d),
            Duration {
                seconds: 2,
                nanos: 500_000_000
            }
        );
        assert_eq!(duration_to_std(&duration_from_std(d)), Some(d));
        assert_eq!(
            duration_to_std(&Duration {
                seconds: -1,
                nanos: 0
            }),
            None
        );
        assert_eq!(
            duration_from_std(std::time::Duration::MAX).seconds,
            i64::MAX
        );
        assert_eq!(millis_of_std(std::time::Duration::MAX), i64::MAX);
    }
}
