//! The pure parsers of the command line's values: no I/O, no state, total over any input
//! (they answer `Err` rather than panic), so that they can be unit-tested and fuzzed
//! (`server/fuzz/`) on their own.
//!
//! Each error is the text clap prints after "invalid value 'X' for '--flag'".

use std::time::Duration;

use streamgate::proto::start_position::Position;

/// `--window` and `--interval`: a humantime duration such as `250ms`, `5s` or `1m 30s`.
pub fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// `supplier set --duration`: `MIN..MAX` in milliseconds. Only the syntax is checked here;
/// the server checks `0 <= MIN <= MAX`.
pub fn duration_range(text: &str) -> Result<(i64, i64), String> {
    streamgate::page_event::parse_duration_range(text)
}

/// `supplier set --rate`: events per second, `500` or `500/s`. The number is read as Rust
/// reads an `f64`; its range is the server's to check (it refuses NaN, zero and anything
/// above `--supplier-max-rate`).
pub fn rate(text: &str) -> Result<f64, String> {
    text.strip_suffix("/s")
        .unwrap_or(text)
        .parse::<f64>()
        .map_err(|e| format!("expected a rate like 500/s, got {text:?}: {e}"))
}

/// `KEY=VALUE` (`publish --header`, `topics create --config`, `topics alter-config --set`,
/// `streamgate-bench -X`), split at the first `=` (the value may contain more).
pub fn header(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// `groups reset --to-datetime`: an RFC 3339 time, `2026-01-01T00:00:00Z` or with an offset
/// (`2026-01-01T01:00:00+01:00`).
pub fn timestamp(text: &str) -> Result<prost_types::Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| streamgate::time::from_millis(time.timestamp_millis()))
        .map_err(|e| {
            format!("expected an RFC 3339 time like 2026-01-01T00:00:00Z, got {text:?}: {e}")
        })
}

/// `subscribe --from`: `earliest` (or `beginning`) | `latest` (or `end`) | an offset `N >= 0`
/// | `-N`, the last N records of each partition | `@RFC3339` | `@EPOCH_MILLIS`.
///
/// An accepted offset is never negative, nor is a `-N` count (`-0` is offset 0).
pub fn start_position(text: &str) -> Result<Position, String> {
    match text {
        "earliest" | "beginning" => return Ok(Position::Earliest(true)),
        "latest" | "end" => return Ok(Position::Latest(true)),
        _ => {}
    }
    if let Some(time) = text.strip_prefix('@') {
        let millis = match time.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => chrono::DateTime::parse_from_rfc3339(time)
                .map_err(|e| {
                    format!("--from {text:?}: not an RFC 3339 time or epoch milliseconds ({e})")
                })?
                .timestamp_millis(),
        };
        return Ok(Position::Timestamp(streamgate::time::from_millis(millis)));
    }
    match text.parse::<i64>() {
        Ok(n) if n < 0 => n.checked_neg().map(Position::FromEnd).ok_or_else(|| {
            format!(
                "--from {text:?}: at most {} records before the end",
                i64::MAX
            )
        }),
        Ok(n) => Ok(Position::Offset(n)),
        Err(_) => Err(format!(
            "--from {text:?}: expected earliest, latest, OFFSET, -N or @TIME"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_start_position() {
        assert_eq!(start_position("earliest"), Ok(Position::Earliest(true)));
        assert_eq!(start_position("latest"), Ok(Position::Latest(true)));
        assert_eq!(start_position("42"), Ok(Position::Offset(42)));
        assert_eq!(start_position("-3"), Ok(Position::FromEnd(3)));
        assert_eq!(
            start_position("@1000"),
            Ok(Position::Timestamp(prost_types::Timestamp {
                seconds: 1,
                nanos: 0
            }))
        );
        assert_eq!(
            start_position("@1970-01-01T00:00:02.5Z"),
            Ok(Position::Timestamp(prost_types::Timestamp {
                seconds: 2,
                nanos: 500_000_000
            }))
        );
        assert!(start_position("soon").is_err());
        assert!(start_position("@yesterday").is_err());
    }

    #[test]
    fn refuses_a_count_from_the_end_that_does_not_fit() {
        // -i64::MIN overflows: it used to panic (debug) or wrap to a negative count.
        assert!(start_position("-9223372036854775808").is_err());
        assert_eq!(
            start_position("-9223372036854775807"),
            Ok(Position::FromEnd(i64::MAX))
        );
    }

    #[test]
    fn parses_rates_with_one_optional_unit() {
        assert_eq!(rate("500"), Ok(500.0));
        assert_eq!(rate("2000/s"), Ok(2000.0));
        assert_eq!(rate("0.5/s"), Ok(0.5));
        assert!(rate("500/s/s").is_err());
        assert!(rate("/s").is_err());
        assert!(rate("fast").is_err());
    }

    #[test]
    fn parses_rfc_3339_times() {
        let want = prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 250_000_000,
        };
        assert_eq!(timestamp("2026-01-01T00:00:00.25Z"), Ok(want));
        assert_eq!(timestamp("2026-01-01T01:00:00.25+01:00"), Ok(want));
        assert!(timestamp("2026-01-01").is_err());
        assert!(timestamp("1767225600000").is_err());
    }

    #[test]
    fn parses_headers_and_durations() {
        assert_eq!(header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(header("ab").is_err());
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(duration("soon").is_err());
        assert_eq!(duration_range("0..9000"), Ok((0, 9000)));
    }
}
