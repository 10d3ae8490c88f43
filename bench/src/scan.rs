//! A filtered subscribe run (`--filter`, `--compare-filter`): reading a topic to its end
//! when the server sends only the records a filter matches, and counting what was *read*
//! as well as what was received.
//!
//! **The end.** A filtered stream goes quiet at the end of the topic as it does after a run
//! of records that do not match, so silence cannot tell the end; `max_records` counts only
//! records sent; and `stop_at_end` trusts the high watermarks, which some brokers (Tansu)
//! move by one per batch rather than per record, so the end it sees can be short of the
//! records stored. Instead the preload ends every partition with an end marker (a record
//! keyed [`END_KEY`], written after every other record was acknowledged, so it is the
//! partition's last), the filter is widened to let the markers through ([`server_filter`]),
//! and the run ends when every partition's marker has come. Only record offsets are
//! trusted, and those are exact on every broker; a topic without markers fails on the idle
//! timeout rather than ending early.
//!
//! **Records read.** The server skips records without a word, but every record it sends
//! says where its partition's reading stands: a record at offset `o` of partition `p` means
//! every offset of `p` before `o` was read. So the records read are counted from offsets
//! (from each partition's start, as the Assignment gives it, up to its marker, which is not
//! counted), as they arrive; that is the figure throughput is given in, on the filtered and
//! the unfiltered side alike. Records received are the others, markers left out.

use std::collections::HashMap;

use crate::read::Reading;
use crate::stats::Tally;

pub use crate::values::END_KEY;

/// The filter sent to the server for the user's `filter`: none for an empty one (every
/// record is sent, markers included); else the filter widened to let the end markers
/// through. The marker test comes first: `||` stops there for a marker whatever the user's
/// filter makes of its value, and for any other record it is one string comparison. The
/// user's filter is wrapped in parentheses, on a line of its own so that a trailing `//`
/// comment cannot swallow the closing one.
pub fn server_filter(filter: &str) -> String {
    if filter.trim().is_empty() {
        String::new()
    } else {
        format!("key == '{END_KEY}' || (\n{filter}\n)")
    }
}

/// Where a filtered read stands, per partition: the next offset not yet accounted for, and
/// whether its end marker has come.
#[derive(Debug, Default)]
pub struct Scan {
    partitions: HashMap<i32, Partition>,
}

#[derive(Debug, Clone, Copy)]
struct Partition {
    next: i64,
    ended: bool,
}

/// What one message of the stream adds up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Records read: offsets passed, the markers left out.
    pub read: u64,
    /// Records received, the markers left out.
    pub received: u64,
}

impl Scan {
    /// A scan of partitions that start at these offsets (the Assignment's `start_offset`, or
    /// the low watermark when reading from earliest without one).
    pub fn new(starts: impl IntoIterator<Item = (i32, i64)>) -> Self {
        let partitions = starts
            .into_iter()
            .map(|(p, start)| {
                let next = start.max(0);
                (p, Partition { next, ended: false })
            })
            .collect();
        Self { partitions }
    }

    /// A record received from `partition` at `offset`, an end marker or not.
    pub fn record(&mut self, partition: i32, offset: i64, marker: bool) -> Step {
        // A partition the start did not list (none should come): it starts at this record.
        let state = self.partitions.entry(partition).or_insert(Partition {
            next: offset,
            ended: false,
        });
        // Offsets before `next` were counted already (a record sent again reads nothing).
        let fresh = offset >= state.next;
        let passed = u64::try_from(offset - state.next).unwrap_or(0);
        state.next = state.next.max(offset + 1);
        if state.ended {
            // After the marker: another run's records, not this one's.
            return Step::default();
        }
        if marker {
            state.ended = true;
            Step {
                read: passed,
                received: 0,
            }
        } else {
            Step {
                read: passed + u64::from(fresh),
                received: 1,
            }
        }
    }

    /// Whether every partition's end marker has come.
    pub fn is_done(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.values().all(|p| p.ended)
    }

    /// Partitions still waiting for their end marker.
    pub fn open(&self) -> usize {
        self.partitions.values().filter(|p| !p.ended).count()
    }
}

/// Counts a filtered read into its tally: records read as the tally's records (so that the
/// window and records/s are records read), and records and bytes received beside them.
pub struct Counting<'a> {
    scan: Scan,
    reading: Reading<'a>,
    tally: &'a Tally,
}

impl<'a> Counting<'a> {
    /// Counting `scan` into `tally`.
    pub fn new(scan: Scan, tally: &'a Tally) -> Self {
        Self {
            scan,
            reading: Reading::new(tally),
            tally,
        }
    }

    /// One message: its records as (partition, offset, is an end marker), and its size in
    /// bytes as received.
    pub fn message(&mut self, records: impl IntoIterator<Item = (i32, i64, bool)>, bytes: u64) {
        let mut step = Step::default();
        for (partition, offset, marker) in records {
            let one = self.scan.record(partition, offset, marker);
            step.read += one.read;
            step.received += one.received;
        }
        self.reading.count(step.read);
        self.tally.delivered(step.received, bytes);
    }

    /// Whether every partition's end marker has come.
    pub fn is_done(&self) -> bool {
        self.scan.is_done()
    }

    /// Why the stream went quiet before its end: the idle timeout's message.
    pub fn stalled(&self, topic: &str) -> String {
        format!(
            "no record of {topic} for {:?} while {} of its partitions had not sent their end marker: a --filter run reads a topic the bench preloaded itself, ending each partition with a record keyed {END_KEY}; give a fresh --topic",
            crate::read::IDLE_TIMEOUT,
            self.scan.open()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_filter_is_widened_to_let_the_end_markers_through() {
        assert_eq!(
            server_filter("value.duration > 100"),
            "key == 'streamgate-bench-end' || (\nvalue.duration > 100\n)"
        );
        // No filter stays none: the server's unfiltered path, markers sent like any record.
        assert_eq!(server_filter(""), "");
        assert_eq!(server_filter("  "), "");
        // A disjunction keeps its meaning inside the parentheses, and a trailing comment
        // stays on its own line.
        let widened = server_filter("key == 'P1' || key == 'P2' // pages");
        assert!(
            widened.ends_with("|| (\nkey == 'P1' || key == 'P2' // pages\n)"),
            "{widened}"
        );
        assert!(
            widened.starts_with("key == 'streamgate-bench-end' || ("),
            "{widened}"
        );
    }

    #[test]
    fn records_read_are_counted_from_offsets_and_received_ones_from_records() {
        let mut scan = Scan::new([(0, 0), (1, 10)]);
        // Partition 0: offsets 0..=4 skipped, 5 received: six read, one received.
        assert_eq!(
            scan.record(0, 5, false),
            Step {
                read: 6,
                received: 1
            }
        );
        // The next one, straight after it.
        assert_eq!(
            scan.record(0, 6, false),
            Step {
                read: 1,
                received: 1
            }
        );
        // Partition 1 starts at 10: its marker at 20 ends it after ten records read, none
        // received, and is not counted itself.
        assert_eq!(
            scan.record(1, 20, true),
            Step {
                read: 10,
                received: 0
            }
        );
        assert!(!scan.is_done());
        assert_eq!(scan.open(), 1);
        // Partition 0's marker at 100: 7..=99 read.
        assert_eq!(
            scan.record(0, 100, true),
            Step {
                read: 93,
                received: 0
            }
        );
        assert!(scan.is_done());
        // Anything after a marker (an earlier run's records) is not this run's.
        assert_eq!(scan.record(0, 101, false), Step::default());
        // In all: offsets 0..100 and 10..20, 110 records read, 2 received.
    }

    #[test]
    fn an_unfiltered_read_counts_every_record_once() {
        let mut scan = Scan::new((0..3).map(|p| (p, 0)));
        let mut total = Step::default();
        for offset in 0..4 {
            for partition in 0..3 {
                let step = scan.record(partition, offset, false);
                total.read += step.read;
                total.received += step.received;
            }
        }
        for partition in 0..3 {
            total.read += scan.record(partition, 4, true).read;
        }
        assert_eq!(
            total,
            Step {
                read: 12,
                received: 12
            }
        );
        assert!(scan.is_done());
        // A record seen again (a redelivery) is received but reads nothing more.
        let mut again = Scan::new([(0, 0)]);
        again.record(0, 3, false);
        assert_eq!(
            again.record(0, 3, false),
            Step {
                read: 0,
                received: 1
            }
        );
    }

    #[test]
    fn nothing_is_done_before_the_assignment_lists_partitions() {
        assert!(!Scan::default().is_done());
        assert!(!Scan::new([(0, 5)]).is_done());
    }

    #[test]
    fn counting_puts_records_read_in_the_tally_and_receptions_beside_them() {
        let tally = Tally::start(std::time::Duration::ZERO);
        let mut counting = Counting::new(Scan::new([(0, 0), (1, 0)]), &tally);
        counting.message([(0, 9, false), (1, 4, false)], 300);
        counting.message([(0, 10, true), (1, 5, true)], 40);
        assert!(counting.is_done());
        let counts = tally.finish().counts;
        assert_eq!(counts.all.records, 15);
        assert_eq!(counts.delivered.records, 2);
        assert_eq!(counts.delivered.bytes, 340);
    }
}
