//! WatchPageStats: one task per watcher turns the hub's snapshots into `PageStats` messages.
//!
//! The task reads the hub's `watch` channel and hands messages to the response stream
//! through a channel of one: while the client is slow, the task waits on that channel, the
//! hub moves on, and the next message the client gets is the latest state with the number
//! of ticks it skipped. Memory per watcher is one message, whatever the client's speed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use streamgate::proto::{PageCount, PageStats, WatchPageStatsRequest};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::analytics::{Hub, Snapshot, current_window, rolling_counts};
use crate::error::GatewayError;
use streamgate::time::{duration_from_millis, duration_to_millis, from_millis};

/// The response stream of WatchPageStats.
pub type PageStatsStream = ReceiverStream<Result<PageStats, Status>>;

/// Checks the request and starts the watcher's task.
pub fn watch(
    hub: &Hub,
    request: WatchPageStatsRequest,
    permit: OwnedSemaphorePermit,
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
    tasks.spawn(async move {
        let _permit = permit;
        watcher.run(snapshots, tx, shutdown).await;
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
        let pages = snapshot
            .pages
            .iter()
            .map(|page| PageCount {
                page: page.clone(),
                count: window.and_then(|w| w.pages.get(page)).copied().unwrap_or(0),
                rolling_count: rolling.get(page).copied().unwrap_or(0),
            })
            .collect();
        PageStats {
            window_start: Some(from_millis(start)),
            window_end: Some(from_millis(end)),
            r#final: window.is_some_and(|w| w.is_final),
            pages,
            rolling: Some(duration_from_millis(self.rolling_ms)),
            skipped_ticks: skipped,
            generated_at: Some(from_millis(snapshot.generated_at_ms)),
        }
    }
}
