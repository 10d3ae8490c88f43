//! The server's `grpc-timeout` parser on any text: never panics; accepts exactly 1 to 8
//! ASCII digits and one of the units H M S m u n; an accepted timeout is exactly that many
//! units and fits in a `Duration` (so the handler's 90 % budget is computable too).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streamgate_server::fuzzing::parse_grpc_timeout;

fn nanos_per_unit(unit: u8) -> Option<u128> {
    Some(match unit {
        b'H' => 3_600_000_000_000,
        b'M' => 60_000_000_000,
        b'S' => 1_000_000_000,
        b'm' => 1_000_000,
        b'u' => 1_000,
        b'n' => 1,
        _ => return None,
    })
}

fuzz_target!(|text: &str| {
    let parsed = parse_grpc_timeout(text);
    // The spec's grammar, written independently: TimeoutValue (1-8 digits) TimeoutUnit.
    let expected = match text.as_bytes().split_last() {
        Some((&unit, digits))
            if (1..=8).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            nanos_per_unit(unit).map(|per| {
                let amount: u128 = text[..digits.len()].parse().expect("digits");
                amount * per
            })
        }
        _ => None,
    };
    assert_eq!(parsed.map(|d| d.as_nanos()), expected, "{text:?}");
    if let Some(timeout) = parsed {
        // The largest is 99 999 999 hours, far inside Duration's range.
        assert!(
            timeout <= Duration::from_secs(99_999_999 * 3600),
            "{text:?}"
        );
        let budget = timeout.checked_mul(9).map(|d| d / 10);
        assert!(budget.is_some(), "{text:?}");
        let _ = timeout.mul_f64(0.9);
    }
});
