//! Unit tests of the windowing core.

use super::*;

const S: i64 = 1000;

fn tumbling() -> WindowSpec {
    WindowSpec::tumbling(5 * S, S).expect("valid")
}

fn drain(state: &mut PartitionWindows, wall: i64) -> Vec<WindowUpdate> {
    let mut out = Vec::new();
    state.drain_updates(wall, &mut out);
    out.sort_by(|a, b| (a.start_ms, &a.page).cmp(&(b.start_ms, &b.page)));
    out
}

fn update(page: &str, start: i64, count: u64, is_final: bool) -> WindowUpdate {
    WindowUpdate {
        page: page.into(),
        start_ms: start,
        end_ms: start + 5 * S,
        count,
        is_final,
    }
}

#[test]
fn windows_are_aligned_to_the_epoch() {
    let spec = tumbling();
    assert_eq!(spec.starts_containing(12_345).collect::<Vec<_>>(), [10_000]);
    assert_eq!(spec.starts_containing(10_000).collect::<Vec<_>>(), [10_000]);
    assert_eq!(spec.starts_containing(9_999).collect::<Vec<_>>(), [5_000]);
    assert_eq!(spec.starts_containing(-1).collect::<Vec<_>>(), [-5_000]);
    let hopping = WindowSpec::new(10 * S, 5 * S, 0).expect("valid");
    assert_eq!(
        hopping.starts_containing(12_345).collect::<Vec<_>>(),
        [5_000, 10_000]
    );
    assert_eq!(hopping.tile_start(12_345), 10_000);
}

#[test]
fn rejects_shapes_that_do_not_tile() {
    assert!(WindowSpec::new(10 * S, 3 * S, 0).is_err());
    assert!(WindowSpec::new(0, 0, 0).is_err());
    assert!(WindowSpec::new(S, 2 * S, 0).is_err());
    assert!(WindowSpec::tumbling(S, -1).is_err());
}

#[test]
fn counts_per_page_and_window_and_reports_changes_once() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    let wall = 0;
    assert_eq!(state.record(0, 1_000, "P1", 500, wall), Outcome::Counted);
    assert_eq!(state.record(1, 2_000, "P1", 500, wall), Outcome::Counted);
    assert_eq!(state.record(2, 3_000, "P2", 500, wall), Outcome::Counted);
    assert_eq!(state.record(3, 5_500, "P2", 500, wall), Outcome::Counted);
    assert_eq!(state.next_offset(), 4);
    assert_eq!(
        drain(&mut state, wall),
        [
            update("P1", 0, 2, false),
            update("P2", 0, 1, false),
            update("P2", 5_000, 1, false)
        ]
    );
    assert!(drain(&mut state, wall).is_empty(), "nothing changed since");
    state.record(4, 5_900, "P2", 500, wall);
    assert_eq!(drain(&mut state, wall), [update("P2", 5_000, 2, false)]);
}

#[test]
fn filter_keeps_durations_above_the_threshold_only() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    assert_eq!(state.record(0, 1_000, "P1", 100, 0), Outcome::Filtered);
    assert_eq!(state.record(1, 1_000, "P1", 101, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0), [update("P1", 0, 1, false)]);
    assert_eq!(state.counters().filtered, 1);
}

#[test]
fn late_within_grace_counts_beyond_grace_is_dropped() {
    // Window [0, 5 s), grace 1 s: final once stream time reaches 6 s.
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.record(0, 1_000, "P1", 500, 0);
    state.record(1, 5_500, "P1", 500, 0); // time 5.5 s: [0,5) still open
    assert_eq!(state.record(2, 4_000, "P1", 500, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0)[0], update("P1", 0, 2, false));
    state.record(3, 6_000, "P2", 500, 0); // time 6 s: [0,5) final
    assert_eq!(state.record(4, 4_500, "P1", 500, 0), Outcome::Late);
    assert_eq!(
        drain(&mut state, 0),
        [update("P1", 0, 2, true), update("P2", 5_000, 1, false)]
    );
    assert_eq!(state.counters().late, 1);
    assert_eq!(state.open_windows(), 1);
    // A late record never reopens a final window.
    assert_eq!(state.record(5, 100, "P1", 500, 0), Outcome::Late);
    assert!(drain(&mut state, 0).is_empty());
}

#[test]
fn stream_time_flows_with_the_wall_clock_so_quiet_windows_close() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    let wall = 1_000_000;
    state.record(0, 3_000, "Q", 500, wall);
    assert_eq!(drain(&mut state, wall), [update("Q", 0, 1, false)]);
    // No more records: 2.999 s of wall time later stream time is 5.999 s, still open.
    assert!(drain(&mut state, wall + 2_999).is_empty());
    assert_eq!(state.stream_time(wall + 2_999), Some(5_999));
    assert_eq!(drain(&mut state, wall + 3_000), [update("Q", 0, 1, true)]);
    assert_eq!(state.open_windows(), 0);
}

#[test]
fn older_records_do_not_move_time_back() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.record(0, 10_000, "P1", 500, 0);
    state.record(1, 9_000, "P1", 500, 100);
    assert_eq!(state.stream_time(100), Some(10_100));
}

#[test]
fn hopping_windows_count_a_record_in_each_window_it_falls_in() {
    let spec = WindowSpec::new(10 * S, 5 * S, 0).expect("valid");
    let mut state = PartitionWindows::new(spec, 0, 0);
    state.record(0, 12_000, "P1", 1, 0);
    let out = drain(&mut state, 0);
    assert_eq!(
        out.iter()
            .map(|u| (u.start_ms, u.count))
            .collect::<Vec<_>>(),
        [(5_000, 1), (10_000, 1)]
    );
    // Time 15 s closes [5, 15) only; a record at 14 s still counts in [10, 20).
    state.record(1, 15_000, "P1", 1, 0);
    assert_eq!(state.record(2, 14_000, "P1", 1, 0), Outcome::Counted);
    let out = drain(&mut state, 0);
    assert!(out.contains(&WindowUpdate {
        page: "P1".into(),
        start_ms: 5_000,
        end_ms: 15_000,
        count: 1,
        is_final: true
    }));
}

#[test]
fn restore_reopens_windows_and_keeps_closed_ones_closed() {
    let mut state = PartitionWindows::new(tumbling(), 100, 42);
    state.restore("P1", 0, 7, true, 0);
    state.restore("P1", 5_000, 3, false, 0);
    assert_eq!(state.next_offset(), 42);
    assert!(
        drain(&mut state, 0).is_empty(),
        "restored counts are not news"
    );
    // Stream time is at least 6 s (the final window's closing point): [0,5) stays closed.
    assert_eq!(state.record(42, 1_000, "P1", 500, 0), Outcome::Late);
    assert_eq!(state.record(43, 6_000, "P1", 500, 0), Outcome::Counted);
    assert_eq!(drain(&mut state, 0), [update("P1", 5_000, 4, false)]);
}

#[test]
fn malformed_records_move_offset_and_time_only() {
    let mut state = PartitionWindows::new(tumbling(), 100, 0);
    state.malformed(5, 8_000, 0);
    assert_eq!(state.next_offset(), 6);
    assert_eq!(state.counters().malformed, 1);
    assert_eq!(state.record(6, 1_000, "P1", 500, 0), Outcome::Late);
}
