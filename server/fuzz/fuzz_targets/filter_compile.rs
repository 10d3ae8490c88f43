//! The stream filter compiler on any text: never panics; a filter it accepts is within the
//! size limit, keeps its source, and evaluates on a record (with a JSON value) to a result
//! or an error without panicking — and, the cost model bounding it, without spinning (a
//! slow input is a libFuzzer timeout).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_server::fuzzing::{Filter, FilterLimits, FilterValue, RecordView, value_from_json};

fuzz_target!(|text: &str| {
    let limits = FilterLimits::DEFAULT;
    let Ok(filter) = Filter::compile(text, &limits) else {
        return;
    };
    assert!(text.len() <= limits.max_bytes, "{} bytes accepted", text.len());
    assert_eq!(filter.source(), text);
    let record = RecordView {
        topic: "orders",
        partition: 3,
        offset: 42,
        timestamp_ms: Some(1_795_320_765_000),
        key: Some(b"o-1"),
        headers: vec![("region", Some(b"eu")), ("empty", None)],
    };
    let value = value_from_json(br#"{"amount": 1200, "tags": ["a", "b"], "nested": {"x": [1, 2.5, null, true]}}"#)
        .expect("a JSON object");
    let _ = filter.matches(&record, FilterValue::Value(value));
    let _ = filter.matches(&record, FilterValue::Absent);
});
