//! Conversions between protobuf timestamps and Kafka's epoch milliseconds.

use prost_types::Timestamp;

/// Epoch milliseconds as a protobuf timestamp.
pub fn from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf timestamp as epoch milliseconds; `None` if out of range or malformed.
pub fn to_millis(ts: &Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1000)?
        .checked_add(i64::from(ts.nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_before_1970() {
        for ms in [0, 1, 999, 1_662_925_267_331, -1, -1001] {
            assert_eq!(to_millis(&from_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn rejects_bad_nanos_and_overflow() {
        assert_eq!(
            to_millis(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
        assert_eq!(
            to_millis(&Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            }),
            None
        );
        assert_eq!(
            to_millis(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
    }
}
