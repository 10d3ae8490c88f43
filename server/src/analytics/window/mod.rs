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
mod tests;
