//! The windowing core: per-page counts in tumbling or hopping windows, by event time, with a
//! grace period. Pure: no I/O, no clock of its own (the caller passes the wall clock in), so
//! every rule is unit-tested here.
//!
//! Time. Each source partition has its own *stream time*: the highest record timestamp seen,
//! which then flows on with the wall clock while no newer record arrives. A window
//! `[start, end)` is final once stream time reaches `end + grace`; a record for a final window
//! is late, dropped and counted. Because time flows between records, a quiet page or
//! partition still closes its windows (the stalled-watermark bug of per-key watermarks).
//!
//! Windows are aligned to the epoch: a window starts at every multiple of `advance`, and is
//! `size` long (tumbling: `advance == size`).

use std::collections::{BTreeMap, HashMap};

/// Window shape and lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl WindowSpec {
    /// Windows of `size_ms`, one starting every `advance_ms` (equal for tumbling windows),
    /// accepting records up to `grace_ms` after their end. `size_ms` must be a multiple of
    /// `advance_ms`, so that the windows starting at multiples of `size_ms` tile time.
    pub fn new(size_ms: i64, advance_ms: i64, grace_ms: i64) -> Result<Self, String> {
        if size_ms <= 0 || advance_ms <= 0 {
            return Err(format!(
                "window size and advance must be positive, got {size_ms} ms and {advance_ms} ms"
            ));
        }
        if advance_ms > size_ms || size_ms % advance_ms != 0 {
            return Err(format!(
                "window size ({size_ms} ms) must be a multiple of the advance ({advance_ms} ms)"
            ));
        }
        if grace_ms < 0 {
            return Err(format!("grace must not be negative, got {grace_ms} ms"));
        }
        if size_ms / advance_ms > 1000 {
            return Err("at most 1000 overlapping windows (size / advance)".into());
        }
        Ok(Self {
            size_ms,
            advance_ms,
            grace_ms,
        })
    }

    /// Tumbling windows of `size_ms`.
    pub fn tumbling(size_ms: i64, grace_ms: i64) -> Result<Self, String> {
        Self::new(size_ms, size_ms, grace_ms)
    }

    /// Window length.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// Distance between two window starts.
    pub fn advance_ms(&self) -> i64 {
        self.advance_ms
    }

    /// How long after its end a window still takes records.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// The starts of the windows that contain `ts`, oldest first.
    pub fn starts_containing(&self, ts: i64) -> impl Iterator<Item = i64> + use<> {
        let (size, advance) = (self.size_ms, self.advance_ms);
        let last = ts.div_euclid(advance) * advance;
        let first = last - (size - advance);
        (0..size / advance)
            .map(move |i| first + i * advance)
            .filter(move |start| *start <= ts && ts < start + size)
    }

    /// The start of the tumbling-aligned window (a multiple of the size) containing `ts`.
    pub fn tile_start(&self, ts: i64) -> i64 {
        ts.div_euclid(self.size_ms) * self.size_ms
    }

    /// When stream time makes the window starting at `start` final.
    pub fn closes_at(&self, start: i64) -> i64 {
        start
            .saturating_add(self.size_ms)
            .saturating_add(self.grace_ms)
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted in at least one window.
    Counted,
    /// Not counted: its duration is at or below the filter threshold.
    Filtered,
    /// Not counted: every window it belongs to is already final.
    Late,
}

/// One count to write: a page in a window, as of the partition's current input offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUpdate {
    /// Page name.
    pub page: String,
    /// Window start, epoch ms (inclusive).
    pub start_ms: i64,
    /// Window end, epoch ms (exclusive).
    pub end_ms: i64,
    /// Records of this page in this window.
    pub count: u64,
    /// The window is closed; this count will not change.
    pub is_final: bool,
}

#[derive(Debug, Default)]
struct PageCount {
    count: u64,
    changed: bool,
}

/// Stream time of one partition.
#[derive(Debug, Clone, Copy, Default)]
struct StreamTime {
    /// The highest record timestamp seen (or restored), and the wall time it was seen at.
    anchor: Option<(i64, i64)>,
}

impl StreamTime {
    fn now(&self, wall_ms: i64) -> Option<i64> {
        self.anchor
            .map(|(ts, seen)| ts.saturating_add(wall_ms.saturating_sub(seen).max(0)))
    }

    fn advance_to(&mut self, ts: i64, wall_ms: i64) {
        if self.now(wall_ms).is_none_or(|t| ts > t) {
            self.anchor = Some((ts, wall_ms));
        }
    }
}

/// Counters of one partition's records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounters {
    /// Records counted in a window.
    pub counted: u64,
    /// Records filtered out by duration.
    pub filtered: u64,
    /// Records that came after their windows were final.
    pub late: u64,
    /// Records that are not PageEvents.
    pub malformed: u64,
}

/// The open windows of one source partition, and how far into it they reach.
#[derive(Debug)]
pub struct PartitionWindows {
    spec: WindowSpec,
    min_duration_ms: i64,
    /// Window start → page → count. Closed windows are removed once written as final.
    open: BTreeMap<i64, HashMap<String, PageCount>>,
    time: StreamTime,
    next_offset: i64,
    counters: RecordCounters,
}

impl PartitionWindows {
    /// Empty state reading from `next_offset`; records need `duration > min_duration_ms`.
    pub fn new(spec: WindowSpec, min_duration_ms: i64, next_offset: i64) -> Self {
        Self {
            spec,
            min_duration_ms,
            open: BTreeMap::new(),
            time: StreamTime::default(),
            next_offset,
            counters: RecordCounters::default(),
        }
    }

    /// Restores a count written before (from R4). A final one only moves stream time: the
    /// window was closed, so stream time had reached its closing point.
    pub fn restore(&mut self, page: &str, start_ms: i64, count: u64, is_final: bool, wall_ms: i64) {
        if is_final {
            self.time.advance_to(self.spec.closes_at(start_ms), wall_ms);
            return;
        }
        // A record of this window was seen, so stream time had reached its start.
        self.time.advance_to(start_ms, wall_ms);
        self.open.entry(start_ms).or_default().insert(
            page.to_owned(),
            PageCount {
                count,
                changed: false,
            },
        );
    }

    /// The offset of the next record of this partition: every record before it is counted.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The partition's stream time at wall time `wall_ms`; `None` before any record.
    pub fn stream_time(&self, wall_ms: i64) -> Option<i64> {
        self.time.now(wall_ms)
    }

    /// What happened to the records so far.
    pub fn counters(&self) -> RecordCounters {
        self.counters
    }

    /// Takes one record that is not a PageEvent: it still moves time and the offset.
    pub fn malformed(&mut self, offset: i64, timestamp_ms: i64, wall_ms: i64) {
        self.time.advance_to(timestamp_ms, wall_ms);
        self.next_offset = offset + 1;
        self.counters.malformed += 1;
    }

    /// Takes one PageEvent record: `page` and `duration_ms` from its value, `timestamp_ms`
    /// (event time) from the Kafka record.
    pub fn record(
        &mut self,
        offset: i64,
        timestamp_ms: i64,
        page: &str,
        duration_ms: i64,
        wall_ms: i64,
    ) -> Outcome {
        self.time.advance_to(timestamp_ms, wall_ms);
        self.next_offset = offset + 1;
        if duration_ms <= self.min_duration_ms {
            self.counters.filtered += 1;
            return Outcome::Filtered;
        }
        let now = self.time.now(wall_ms).unwrap_or(timestamp_ms);
        let mut counted = false;
        for start in self.spec.starts_containing(timestamp_ms) {
            if now >= self.spec.closes_at(start) {
                continue;
            }
            let pages = self.open.entry(start).or_default();
            // Look up by &str first: a new String only for a page new to this window.
            match pages.get_mut(page) {
                Some(entry) => {
                    entry.count += 1;
                    entry.changed = true;
                }
                None => {
                    pages.insert(
                        page.to_owned(),
                        PageCount {
                            count: 1,
                            changed: true,
                        },
                    );
                }
            }
            counted = true;
        }
        if counted {
            self.counters.counted += 1;
            Outcome::Counted
        } else {
            self.counters.late += 1;
            Outcome::Late
        }
    }

    /// Appends to `out` every count that changed since the last call, and the final count
    /// of every page of each window that stream time has closed (then forgets that window).
    pub fn drain_updates(&mut self, wall_ms: i64, out: &mut Vec<WindowUpdate>) {
        let now = self.time.now(wall_ms);
        let spec = self.spec;
        let closed: Vec<i64> = self
            .open
            .keys()
            .copied()
            .filter(|start| now.is_some_and(|t| t >= spec.closes_at(*start)))
            .collect();
        for start in closed {
            if let Some(pages) = self.open.remove(&start) {
                for (page, entry) in pages {
                    out.push(WindowUpdate {
                        page,
                        start_ms: start,
                        end_ms: start + spec.size_ms,
                        count: entry.count,
                        is_final: true,
                    });
                }
            }
        }
        for (start, pages) in &mut self.open {
            for (page, entry) in pages.iter_mut().filter(|(_, e)| e.changed) {
                entry.changed = false;
                out.push(WindowUpdate {
                    page: page.clone(),
                    start_ms: *start,
                    end_ms: start + spec.size_ms,
                    count: entry.count,
                    is_final: false,
                });
            }
        }
    }

    /// Windows still open.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
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
}
