//! `StatsRecord::parse` on any bytes (R4 is a topic anyone can write to): never panics,
//! accepts only records with a non-empty window and a partition >= 0, and whatever it
//! accepts survives parse -> to_json -> parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_server::fuzzing::StatsRecord;

fuzz_target!(|data: &[u8]| {
    let Some(record) = StatsRecord::parse(data) else {
        return;
    };
    assert!(record.window_end_ms > record.window_start_ms, "{record:?}");
    assert!(record.partition >= 0, "{record:?}");
    let json = record.to_json();
    assert_eq!(
        StatsRecord::parse(&json).as_ref(),
        Some(&record),
        "{:?}",
        String::from_utf8_lossy(&json)
    );
    assert_eq!(
        record.key(),
        format!(
            "{}@{}@{}",
            record.page, record.window_start_ms, record.partition
        )
    );
});
