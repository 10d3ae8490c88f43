//! WatchPageStats: one task per watcher turns the hub's snapshots into `PageStats` messages.
//!
//! The task reads the hub's `watch` channel and hands messages to the response stream
//! through a channel of one: while the client is slow, the task waits on that channel, the
//! hub moves on, and the next message the client gets is the latest state with the number
//! of ticks it skipped. Memory per watcher is one message, whatever the client's speed.
//!
//! A message stays under the 4 MiB that gRPC clients accept by default (grpc-go,
//! grpc-java): when the pages would take more than [`MAX_PAGES_BYTES`], the pages with the
//! smallest counts are folded into one [`OTHER`] entry, and `folded_pages` says how many.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use streamgate::proto::{PageCount, PageStats, WatchPageStatsRequest};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::admission::Permit;
use crate::analytics::{Hub, Snapshot, WindowTotals, current_window, rolling_counts};
use crate::gateway::error::GatewayError;
use streamgate::time::{duration_from_millis, duration_to_millis, from_millis};

/// The most the pages of one message may take, encoded: 3.5 MiB, leaving half a MiB of the
/// 4 MiB default limit of gRPC clients to the rest of the message and the framing.
pub const MAX_PAGES_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;

/// The entry that holds the folded pages' counts (the worker counts the pages beyond its
/// own limit under the same name, so the two are merged when pages are folded).
pub const OTHER: &str = "(other)";

/// The response stream of WatchPageStats.
pub type PageStatsStream = ReceiverStream<Result<PageStats, Status>>;

/// Checks the request and starts the watcher's task.
pub fn watch(
    hub: &Hub,
    request: WatchPageStatsRequest,
    permit: Permit,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<PageStatsStream, GatewayError> {
    let settings = hub.settings();
    let rolling_ms = match request.rolling {
        None => settings.spec.size_ms(),
        Some(d) => {
            let ms = duration_to_millis(&d).filter(|ms| *ms > 0).ok_or_else(|| {
                GatewayError::InvalidArgument("rolling must be a positive duration".into())
            })?;
            let longest = i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
            if ms > longest {
                return Err(GatewayError::InvalidArgument(format!(
                    "rolling must be at most {} (the server's --stats-retention), got {ms} ms",
                    humantime::format_duration(settings.retention)
                )));
            }
            ms
        }
    };
    let (tx, rx) = mpsc::channel(1);
    let watcher = Watcher {
        hub: hub.clone(),
        rolling_ms,
        final_only: request.final_only,
        last_tick: None,
        sent_finals: BTreeSet::new(),
    };
    let snapshots = hub.watch();
    // A panic must not look like a clean end of the stream to the client.
    let on_panic = tx.clone();
    tasks.spawn(async move {
        let _permit = permit;
        let run = watcher.run(snapshots, tx, shutdown);
        if crate::supervisor::catch("page stats watcher", run)
            .await
            .is_none()
        {
            let _ = on_panic.try_send(Err(Status::internal(
                "the watcher's task failed; the server's log says why",
            )));
        }
    });
    Ok(ReceiverStream::new(rx))
}

struct Watcher {
    hub: Hub,
    rolling_ms: i64,
    final_only: bool,
    last_tick: Option<u64>,
    /// Final windows already sent (final-only mode). Windows finish in any order (a quiet
    /// partition closes its windows later), so this is a set, pruned to retained windows.
    sent_finals: BTreeSet<i64>,
}

impl Watcher {
    async fn run(
        mut self,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
        tx: mpsc::Sender<Result<PageStats, Status>>,
        shutdown: CancellationToken,
    ) {
        let mut first = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let _ = tx.try_send(Err(Status::unavailable("the server is shutting down")));
                    return;
                }
                _ = tx.closed() => return,
                changed = snapshots.changed() => if changed.is_err() { return },
            }
            let snapshot = snapshots.borrow_and_update().clone();
            let skipped = self.last_tick.map_or(0, |last| {
                snapshot.tick.saturating_sub(last).saturating_sub(1)
            });
            self.last_tick = Some(snapshot.tick);
            for message in self.messages(&snapshot, skipped, first) {
                // Waiting here is the backpressure: the hub goes on without this watcher.
                // A watcher that never reads must not hold the drain up.
                let sent = tokio::select! {
                    sent = tx.send(Ok(message)) => sent.is_ok(),
                    _ = shutdown.cancelled() => false,
                };
                if !sent {
                    return;
                }
            }
            first = false;
        }
    }

    /// What to send for one snapshot.
    fn messages(&mut self, snapshot: &Snapshot, skipped: u64, first: bool) -> Vec<PageStats> {
        let spec = self.hub.settings().spec;
        let now = snapshot.generated_at_ms;
        let rolling = rolling_counts(snapshot, &spec, now, self.rolling_ms);
        if !self.final_only {
            let (start, end) = current_window(snapshot, &spec, now);
            return vec![self.message(snapshot, start, end, &rolling, skipped)];
        }
        self.sent_finals
            .retain(|start| snapshot.windows.contains_key(start));
        let finals: Vec<(i64, i64)> = snapshot
            .windows
            .iter()
            .filter(|(start, w)| w.is_final && !self.sent_finals.contains(start))
            .map(|(start, w)| (*start, w.end_ms))
            .collect();
        // The first message comes at once: the newest final window, if there is one; the
        // older ones count as seen.
        let finals: Vec<(i64, i64)> = if first {
            self.sent_finals
                .extend(finals.iter().map(|(start, _)| *start));
            finals.last().copied().into_iter().collect()
        } else {
            finals
        };
        self.sent_finals
            .extend(finals.iter().map(|(start, _)| *start));
        finals
            .into_iter()
            .map(|(start, end)| self.message(snapshot, start, end, &rolling, skipped))
            .collect()
    }

    fn message(
        &self,
        snapshot: &Snapshot,
        start: i64,
        end: i64,
        rolling: &HashMap<String, u64>,
        skipped: u64,
    ) -> PageStats {
        let window = snapshot.windows.get(&start).filter(|w| w.end_ms == end);
        let (pages, folded_pages) = page_counts(&snapshot.pages, window, rolling, MAX_PAGES_BYTES);
        PageStats {
            window_start: Some(from_millis(start)),
            window_end: Some(from_millis(end)),
            r#final: window.is_some_and(|w| w.is_final),
            pages,
            rolling: Some(duration_from_millis(self.rolling_ms)),
            skipped_ticks: skipped,
            folded_pages,
            generated_at: Some(from_millis(snapshot.generated_at_ms)),
        }
    }
}

/// The entries of `pages` (sorted by name) with their window and rolling counts, within
/// `budget` bytes once encoded: when they do not all fit, the pages with the largest counts
/// (window count first, then rolling count) keep their entries, in name order, and the rest
/// are folded into a last [`OTHER`] entry with their summed counts. Returns the entries and
/// how many pages were folded.
fn page_counts(
    pages: &BTreeSet<String>,
    window: Option<&WindowTotals>,
    rolling: &HashMap<String, u64>,
    budget: usize,
) -> (Vec<PageCount>, u64) {
    let entries: Vec<PageCount> = pages
        .iter()
        .map(|page| PageCount {
            page: page.clone(),
            count: window.and_then(|w| w.pages.get(page)).copied().unwrap_or(0),
            rolling_count: rolling.get(page).copied().unwrap_or(0),
        })
        .collect();
    let sizes: Vec<usize> = entries.iter().map(entry_len).collect();
    if sizes.iter().fold(0usize, |sum, n| sum.saturating_add(*n)) <= budget {
        return (entries, 0);
    }
    // Room for the fold entry at its largest.
    let other_len = entry_len(&PageCount {
        page: OTHER.into(),
        count: u64::MAX,
        rolling_count: u64::MAX,
    });
    let room = budget.saturating_sub(other_len);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| {
        let (a, b) = (&entries[*a], &entries[*b]);
        (b.count, b.rolling_count).cmp(&(a.count, a.rolling_count))
    });
    let mut keep = vec![false; entries.len()];
    let mut used = 0usize;
    for i in order {
        // The worker's own "(other)" always goes into the fold entry.
        if entries[i].page != OTHER && used.saturating_add(sizes[i]) <= room {
            used += sizes[i];
            keep[i] = true;
        }
    }
    let mut other = PageCount {
        page: OTHER.into(),
        count: 0,
        rolling_count: 0,
    };
    let mut folded = 0u64;
    let mut kept = Vec::new();
    for (entry, keep) in entries.into_iter().zip(keep) {
        if keep {
            kept.push(entry);
            continue;
        }
        if entry.page != OTHER {
            folded += 1;
        }
        other.count = other.count.saturating_add(entry.count);
        other.rolling_count = other.rolling_count.saturating_add(entry.rolling_count);
    }
    kept.push(other);
    (kept, folded)
}

/// What one entry adds to an encoded `PageStats` (field 4: tag, length, message).
fn entry_len(entry: &PageCount) -> usize {
    prost::encoding::message::encoded_len(4, entry)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message;

    use super::*;

    const GRPC_DEFAULT_LIMIT: usize = 4 * 1024 * 1024;

    fn name(i: usize) -> String {
        format!("/a/rather/long/page/name/number/{i:07}")
    }

    #[test]
    fn all_pages_fit_when_they_are_few() {
        let pages: BTreeSet<String> = (0..100).map(name).collect();
        let (entries, folded) = page_counts(&pages, None, &HashMap::new(), MAX_PAGES_BYTES);
        assert_eq!((entries.len(), folded), (100, 0));
        assert!(entries.windows(2).all(|w| w[0].page < w[1].page), "sorted");
    }

    #[test]
    fn two_hundred_thousand_pages_fold_the_smallest_into_other() {
        let n = 200_000;
        let pages: BTreeSet<String> = (0..n).map(name).collect();
        let counts: BTreeMap<String, u64> = (0..n).map(|i| (name(i), i as u64)).collect();
        let total: u64 = counts.values().sum();
        let window = WindowTotals {
            end_ms: 5_000,
            pages: counts,
            is_final: false,
        };
        // Counts up to u64::MAX: the fold saturates instead of overflowing.
        let rolling: HashMap<String, u64> =
            (0..n).map(|i| (name(i), u64::MAX - i as u64)).collect();
        let (pages, folded) = page_counts(&pages, Some(&window), &rolling, MAX_PAGES_BYTES);
        let message = PageStats {
            window_start: Some(from_millis(0)),
            window_end: Some(from_millis(5_000)),
            r#final: false,
            pages,
            rolling: Some(duration_from_millis(5_000)),
            skipped_ticks: u64::MAX,
            generated_at: Some(from_millis(i64::MAX)),
            folded_pages: folded,
        };
        assert!(
            message.encoded_len() <= GRPC_DEFAULT_LIMIT,
            "{} bytes",
            message.encoded_len()
        );
        assert!(folded > 0);
        let (other, kept) = message.pages.split_last().expect("entries");
        assert_eq!(other.page, OTHER);
        assert_eq!(
            kept.len() as u64 + folded,
            n as u64,
            "every page is kept or folded"
        );
        assert!(
            kept.windows(2).all(|w| w[0].page < w[1].page),
            "kept ones sorted"
        );
        // The largest counts keep their entries.
        let smallest_kept = kept.iter().map(|p| p.count).min().expect("some kept");
        assert_eq!(
            smallest_kept, folded,
            "pages 0..folded (the smallest) are folded"
        );
        let sum: u64 = message.pages.iter().map(|p| p.count).sum();
        assert_eq!(sum, total, "the fold keeps the total");
        assert_eq!(other.rolling_count, u64::MAX, "saturates");
    }

    #[test]
    fn the_workers_other_joins_the_fold_without_counting_as_folded() {
        let pages: BTreeSet<String> = [OTHER.to_owned(), name(1), name(2)].into();
        let window = WindowTotals {
            end_ms: 5_000,
            pages: [(OTHER.to_owned(), 7), (name(1), 5), (name(2), 1)].into(),
            is_final: false,
        };
        let one = entry_len(&PageCount {
            page: name(1),
            count: 5,
            rolling_count: 0,
        });
        let other = entry_len(&PageCount {
            page: OTHER.into(),
            count: u64::MAX,
            rolling_count: u64::MAX,
        });
        let (entries, folded) = page_counts(&pages, Some(&window), &HashMap::new(), one + other);
        assert_eq!(folded, 1);
        assert_eq!(
            entries
                .iter()
                .map(|p| (p.page.as_str(), p.count))
                .collect::<Vec<_>>(),
            [(name(1).as_str(), 5), (OTHER, 8)]
        );
    }
}
