//! The CLI's `subscribe --from` parser on any text: never panics; an offset and a count
//! from the end are never negative; a time is a valid protobuf timestamp (nanos in
//! 0..1e9) that reads back as the same epoch milliseconds; and every accepted position
//! written back in the documented syntax parses to the same position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate::proto::start_position::Position;
use streamgate::time;
use streamgate_cli::parse::start_position;

fuzz_target!(|text: &str| {
    let Ok(position) = start_position(text) else {
        return;
    };
    let written = match &position {
        Position::Earliest(earliest) => {
            assert!(*earliest);
            "earliest".to_owned()
        }
        Position::Latest(latest) => {
            assert!(*latest);
            "latest".to_owned()
        }
        Position::Offset(offset) => {
            assert!(*offset >= 0, "{text:?} -> {position:?}");
            offset.to_string()
        }
        Position::FromEnd(count) => {
            assert!(*count > 0, "{text:?} -> {position:?}");
            format!("-{count}")
        }
        Position::Timestamp(ts) => {
            assert!((0..1_000_000_000).contains(&ts.nanos), "{text:?} -> {ts:?}");
            let millis = time::to_millis(ts)
                .unwrap_or_else(|| panic!("{text:?} -> {ts:?} is not epoch milliseconds"));
            format!("@{millis}")
        }
    };
    assert_eq!(
        start_position(&written),
        Ok(position),
        "{text:?} -> {written:?}"
    );
});
