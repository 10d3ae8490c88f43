//! The deadline of a call: the client's `grpc-timeout` header when it sent one, the
//! server's default (`--request-timeout`) otherwise, so that no call waits on Kafka forever.
//!
//! tonic enforces `grpc-timeout` itself by cancelling the handler with a generic CANCELLED;
//! reading the same header lets handlers finish first with a status that says what happened.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// The time a handler may spend before it must answer.
pub fn of(metadata: &MetadataMap, default: Duration) -> (Instant, Duration) {
    let budget = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        // Answer a little before the client gives up, so it sees our status, not its own.
        .map(|client| client.mul_f64(0.9))
        .unwrap_or(default);
    (Instant::now() + budget, budget)
}

/// Parses the `grpc-timeout` header: at most 8 digits and a unit (H, M, S, m, u, n), as
/// the gRPC-over-HTTP/2 spec has it; `None` for anything else. Total over any input.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount.checked_mul(3600)?),
        'M' => Duration::from_secs(amount.checked_mul(60)?),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn falls_back_to_the_default() {
        let (_, budget) = of(&MetadataMap::new(), Duration::from_secs(3));
        assert_eq!(budget, Duration::from_secs(3));
    }
}
