//! The CLI's duration flags (`stats --window`, `supplier set --interval`) on any text:
//! never panic; an accepted duration reads back the same from humantime's own writing of
//! it, and converts to a protobuf Duration (as it is sent) and back without loss, unless
//! it is beyond i64::MAX seconds, where the conversion saturates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate::time::{duration_from_std, duration_to_std};
use streamgate_cli::parse::duration;

fuzz_target!(|text: &str| {
    let Ok(d) = duration(text) else {
        return;
    };
    let written = humantime::format_duration(d).to_string();
    assert_eq!(duration(&written), Ok(d), "{text:?} -> {written:?}");
    let sent = duration_from_std(d);
    assert!(
        (0..1_000_000_000).contains(&sent.nanos),
        "{text:?} -> {sent:?}"
    );
    if i64::try_from(d.as_secs()).is_ok() {
        assert_eq!(duration_to_std(&sent), Some(d), "{text:?} -> {sent:?}");
    } else {
        assert_eq!(sent.seconds, i64::MAX, "{text:?} -> {sent:?}");
    }
});
