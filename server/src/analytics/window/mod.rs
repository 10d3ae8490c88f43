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
//!
//! Untrusted time. Timestamps come from whoever produced the record, so every window
//! computation is checked over the whole `i64` range: a window exists only if both its start
//! and its end are representable, and a timestamp near `i64::MIN` or `i64::MAX` simply has
//! fewer (or no) windows. A record stamped more than the spec's event-time horizon
//! ([`WindowSpec::with_limits`]) ahead of the wall clock is [`Outcome::Future`]: it neither
//! moves stream time nor counts, so a few records stamped 2100 cannot close every window for
//! everyone else. The same horizon applies to counts restored from R4.
//!
//! Bounded cardinality. A window holds at most `max_pages` distinct pages; events of any
//! further page are counted under [`OTHER_PAGE`], never dropped.

use std::collections::{BTreeMap, HashMap};

/// The page that counts the events of every page past a window's `max_pages`.
pub const OTHER_PAGE: &str = "(other)";

/// Window shape and lateness, and the limits that keep untrusted input from poisoning them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
    /// How far ahead of the wall clock an event time may be (`i64::MAX`: no limit).
    max_skew_ms: i64,
    /// Distinct pages per window before [`OTHER_PAGE`] takes the rest.
    max_pages: usize,
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
            max_skew_ms: i64::MAX,
            max_pages: usize::MAX,
        })
    }

    /// The same windows with limits: an event time more than `max_skew_ms` ahead of the wall
    /// clock is [`Outcome::Future`] (negative counts as 0), and a window holds at most
    /// `max_pages` distinct pages (at least 1) before the rest counts as [`OTHER_PAGE`].
    pub fn with_limits(self, max_skew_ms: i64, max_pages: usize) -> Self {
        Self {
            max_skew_ms: max_skew_ms.max(0),
            max_pages: max_pages.max(1),
            ..self
        }
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

    /// How far ahead of the wall clock an event time may be.
    pub fn max_skew_ms(&self) -> i64 {
        self.max_skew_ms
    }

    /// Distinct pages per window before [`OTHER_PAGE`].
    pub fn max_pages(&self) -> usize {
        self.max_pages
    }

    /// Whether `ts` is further ahead of the wall clock `wall_ms` than the limit allows.
    pub fn is_future(&self, ts: i64, wall_ms: i64) -> bool {
        // In i128, so that no pair of i64 overflows; `i64::MAX` means no limit.
        self.max_skew_ms != i64::MAX
            && i128::from(ts) - i128::from(wall_ms) > i128::from(self.max_skew_ms)
    }

    /// The end of the window starting at `start`, if representable.
    pub fn end_of(&self, start: i64) -> Option<i64> {
        start.checked_add(self.size_ms)
    }

    /// The starts of the windows that contain `ts`, oldest first: every `start` is a multiple
    /// of the advance with `start <= ts < start + size`, both ends representable. Fewer
    /// windows (or none) at the very edges of the `i64` range.
    pub fn starts_containing(&self, ts: i64) -> impl Iterator<Item = i64> + use<> {
        let (size, advance) = (self.size_ms, self.advance_ms);
        // The last window start at or before ts, as a multiple of `advance`: `None` only when
        // that multiple is below i64::MIN (then no window contains ts).
        let last_index = ts.div_euclid(advance);
        let overlapping = size / advance;
        (0..overlapping).filter_map(move |back| {
            let index = last_index.checked_sub(overlapping - 1 - back)?;
            let start = index.checked_mul(advance)?;
            let end = start.checked_add(size)?;
            (start <= ts && ts < end).then_some(start)
        })
    }

    /// The start of the tumbling-aligned window (a multiple of the size) containing `ts`, if
    /// that window's start and end are representable.
    pub fn checked_tile_start(&self, ts: i64) -> Option<i64> {
        let start = ts.div_euclid(self.size_ms).checked_mul(self.size_ms)?;
        start.checked_add(self.size_ms)?;
        Some(start)
    }

    /// The start of the tumbling-aligned window (a multiple of the size) containing `ts`;
    /// clamped to `i64::MIN` where that start is not representable.
    pub fn tile_start(&self, ts: i64) -> i64 {
        ts.div_euclid(self.size_ms)
            .checked_mul(self.size_ms)
            .unwrap_or(i64::MIN)
    }

    /// When stream time makes the window starting at `start` final (saturating).
    pub fn closes_at(&self, start: i64) -> i64 {
        start
            .saturating_add(self.size_ms)
            .saturating_add(self.grace_ms)
    }

    /// Whether `start` is where a window of this spec starts: a multiple of the advance with
    /// a representable end.
    pub fn is_window_start(&self, start: i64) -> bool {
        start.rem_euclid(self.advance_ms) == 0 && self.end_of(start).is_some()
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted in at least one window.
    Counted,
    /// Not counted: its duration is at or below the filter threshold.
    Filtered,
    /// Not counted: every window it belongs to is already final (or, at the very edges of
    /// the `i64` range, it belongs to no window).
    Late,
    /// Not counted, and stream time not moved: its timestamp is further ahead of the wall
    /// clock than the spec allows.
    Future,
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

impl PageCount {
    fn first() -> Self {
        Self {
            count: 1,
            changed: true,
        }
    }

    fn bump(&mut self) {
        self.count += 1;
        self.changed = true;
    }
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
    /// Records stamped too far ahead of the wall clock.
    pub future: u64,
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
    /// window was closed, so stream time had reached its closing point. A count whose window
    /// is not one of this spec's, or lies beyond the event-time horizon, is ignored: R4 may
    /// carry windows that an older worker opened for a record stamped far in the future.
    pub fn restore(&mut self, page: &str, start_ms: i64, count: u64, is_final: bool, wall_ms: i64) {
        if !self.spec.is_window_start(start_ms) || self.spec.is_future(start_ms, wall_ms) {
            return;
        }
        if is_final {
            let closed = self.spec.closes_at(start_ms);
            if !self.spec.is_future(closed, wall_ms) {
                self.time.advance_to(closed, wall_ms);
            }
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

    #[cfg(any(test, feature = "test-hooks"))]
    /// The partition's stream time at wall time `wall_ms`; `None` before any record.
    pub fn stream_time(&self, wall_ms: i64) -> Option<i64> {
        self.time.now(wall_ms)
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// What happened to the records so far.
    pub fn counters(&self) -> RecordCounters {
        self.counters
    }

    /// Takes one record that is not a PageEvent (or not one the worker accepts): it still
    /// moves time, unless stamped beyond the horizon, and the offset.
    pub fn malformed(&mut self, offset: i64, timestamp_ms: i64, wall_ms: i64) {
        if !self.spec.is_future(timestamp_ms, wall_ms) {
            self.time.advance_to(timestamp_ms, wall_ms);
        }
        self.next_offset = offset.saturating_add(1);
        self.counters.malformed += 1;
    }

    /// Passes over one record without looking at it (it was dead-lettered, or skipped):
    /// only the offset moves.
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = offset.saturating_add(1);
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
        self.next_offset = offset.saturating_add(1);
        if self.spec.is_future(timestamp_ms, wall_ms) {
            self.counters.future += 1;
            return Outcome::Future;
        }
        self.time.advance_to(timestamp_ms, wall_ms);
        if duration_ms <= self.min_duration_ms {
            self.counters.filtered += 1;
            return Outcome::Filtered;
        }
        let now = self.time.now(wall_ms).unwrap_or(timestamp_ms);
        let max_pages = self.spec.max_pages;
        let mut counted = false;
        for start in self.spec.starts_containing(timestamp_ms) {
            if now >= self.spec.closes_at(start) {
                continue;
            }
            let pages = self.open.entry(start).or_default();
            // Look up by &str first (one hash for a page the window knows): a new String
            // only for a page new to this window, and only while the window has room; past
            // that, the page counts as OTHER_PAGE.
            if let Some(entry) = pages.get_mut(page) {
                entry.bump();
            } else if pages.len() < max_pages {
                pages.insert(page.to_owned(), PageCount::first());
            } else if let Some(entry) = pages.get_mut(OTHER_PAGE) {
                entry.bump();
            } else {
                pages.insert(OTHER_PAGE.to_owned(), PageCount::first());
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
                        end_ms: start.saturating_add(spec.size_ms),
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
                    end_ms: start.saturating_add(spec.size_ms),
                    count: entry.count,
                    is_final: false,
                });
            }
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Windows still open.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests;
