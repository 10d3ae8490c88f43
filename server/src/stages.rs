//! The background stages — the supplier, the transform, the log consumer, the analytics
//! worker and the stats hub — started and stopped through one type that owns them.
//!
//! Every stage watches the server's shutdown token and ends by itself; each one's task (and
//! the worker's thread, through a tracked blocking join) is tracked by the server's
//! `TaskTracker`, so the drain can wait for all of them within its bound.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;

use crate::analytics::{Hub, HubSettings, Worker, WorkerCounters, WorkerSettings};
use crate::kafka::{Kafka, Producer};
use crate::log_consumer;
use crate::settings::{InvalidSetting, Settings};
use crate::supervisor::Restarts;
use crate::supplier::Supplier;
use crate::transform::{Transform, TransformCounters, TransformSettings};

/// A stage that could not start: its Kafka client, or the worker's thread, was refused.
#[derive(Debug, thiserror::Error)]
#[error("could not start the {stage}: {detail}")]
pub struct StageError {
    /// Which stage.
    pub stage: &'static str,
    /// What failed.
    pub detail: String,
}

/// Names `stage` in its start-up error.
fn failed<E: std::fmt::Display>(stage: &'static str) -> impl FnOnce(E) -> StageError {
    move |e| StageError {
        stage,
        detail: e.to_string(),
    }
}

/// The running stages.
pub struct Stages {
    /// The PageEvent supplier, driven by ControlSupplier.
    pub supplier: Supplier,
    /// The stats hub, behind WatchPageStats.
    pub hub: Hub,
    hub_task: JoinHandle<()>,
    transform: Option<Transform>,
    log_consumer: Option<(JoinHandle<()>, Arc<Restarts>)>,
    worker: Option<(JoinHandle<()>, Arc<WorkerCounters>)>,
}

/// What the stages have done, for the metrics: their counters, read at each scrape.
pub struct StageCounters {
    /// The supplier (its sent and error counts, its restarts).
    pub supplier: Supplier,
    /// The transform's counters and restarts, when it runs.
    pub transform: Option<(Arc<TransformCounters>, Arc<Restarts>)>,
    /// The analytics worker's counters, when it runs (restarts included).
    pub worker: Option<Arc<WorkerCounters>>,
    /// The stats hub (its restarts).
    pub hub: Hub,
    /// Restarts of the log consumer, when it runs.
    pub log_consumer: Option<Arc<Restarts>>,
}

/// Where the stages run: the cluster, the shared producer, and the server's lifetime.
pub struct StageContext<'a> {
    /// The cluster.
    pub kafka: &'a Kafka,
    /// The shared idempotent producer.
    pub producer: &'a Producer,
    /// Tracks every task a stage spawns.
    pub tasks: &'a TaskTracker,
    /// Cancelled when the server stops.
    pub shutdown: &'a CancellationToken,
    /// The port this server listens on (part of the worker's default transactional id).
    pub port: u16,
}

impl Stages {
    /// Handles on the stages' counters.
    pub fn counters(&self) -> StageCounters {
        StageCounters {
            supplier: self.supplier.clone(),
            transform: self
                .transform
                .as_ref()
                .map(|t| (t.counters(), t.restart_counter())),
            worker: self.worker.as_ref().map(|(_, counters)| counters.clone()),
            hub: self.hub.clone(),
            log_consumer: self.log_consumer.as_ref().map(|(_, r)| r.clone()),
        }
    }

    /// Starts every stage that `settings` switches on; the hub always runs.
    pub fn start(settings: &Settings, cx: &StageContext<'_>) -> Result<Self, StageError> {
        let supplier = Supplier::spawn(
            cx.producer.clone(),
            settings.supplier.settings.clone(),
            settings.supplier.running,
            settings.supplier.max_rate,
            settings.timeouts.request,
            cx.tasks,
            cx.shutdown.clone(),
        );
        let transform = match settings.transform.run {
            true => Some(
                Transform::spawn(
                    cx.kafka,
                    cx.producer.clone(),
                    transform_settings(settings).map_err(failed("transform"))?,
                    cx.tasks,
                    cx.shutdown.clone(),
                )
                .map_err(failed("transform"))?,
            ),
            false => None,
        };
        let log_consumer = match settings.log_consumer {
            true => Some(
                log_consumer::spawn(
                    cx.kafka,
                    settings.topics.log.clone(),
                    cx.tasks,
                    cx.shutdown.clone(),
                )
                .map_err(failed("log consumer"))?,
            ),
            false => None,
        };
        let (hub, hub_task) = Hub::spawn(
            cx.kafka.client_settings(),
            hub_settings(settings),
            cx.tasks,
            cx.shutdown.clone(),
        )
        .map_err(failed("stats hub"))?;
        let worker = match settings.analytics.worker {
            true => {
                let worker = Worker::spawn(
                    cx.kafka.client_settings(),
                    worker_settings(settings, cx.port).map_err(failed("analytics worker"))?,
                    cx.shutdown.clone(),
                )
                .map_err(failed("analytics worker"))?;
                // The worker is a thread of its own; a tracked blocking join lets the drain
                // wait for it like for any task.
                let counters = worker.counters();
                Some((cx.tasks.spawn_blocking(move || worker.join()), counters))
            }
            false => None,
        };
        Ok(Self {
            supplier,
            hub,
            hub_task,
            transform,
            log_consumer,
            worker,
        })
    }

    /// Waits until every stage has ended; call after cancelling the shutdown token. Stages
    /// that write (the transform, the worker) finish first, then the readers.
    pub async fn stopped(self) {
        if let Some(transform) = self.transform {
            transform.stopped().await;
        }
        for (name, task) in [
            ("analytics worker", self.worker.map(|(task, _)| task)),
            ("log consumer", self.log_consumer.map(|(task, _)| task)),
            ("stats hub", Some(self.hub_task)),
        ] {
            let Some(task) = task else { continue };
            if let Err(e) = task.await {
                tracing::warn!(stage = name, error = %e, "stage ended abnormally");
            }
        }
    }
}

fn transform_settings(settings: &Settings) -> Result<TransformSettings, InvalidSetting> {
    Ok(TransformSettings {
        input: settings.transform_input().clone(),
        output: settings.topics.transform_output.clone(),
        group: settings.transform.group.clone(),
        send_timeout: settings.timeouts.request,
        max_page_name_bytes: settings.limits.max_page_name_bytes,
        dead_letters: settings.transform_dead_letters()?,
    })
}

fn hub_settings(settings: &Settings) -> HubSettings {
    HubSettings {
        input: settings.supplier_topic().clone(),
        group: settings.analytics.group.clone(),
        topic: settings.topics.stats.clone(),
        spec: settings.analytics.spec,
        tick: settings.analytics.tick,
        retention: settings.analytics.retention,
        // Workers count events up to the skew ahead of their clock, in windows that start
        // up to a window before them; clocks of servers differ a little more.
        max_ahead: settings.analytics.max_event_skew
            + std::time::Duration::from_millis(
                u64::try_from(settings.analytics.spec.size_ms()).unwrap_or(0),
            )
            + std::time::Duration::from_secs(60),
    }
}

fn worker_settings(settings: &Settings, port: u16) -> Result<WorkerSettings, InvalidSetting> {
    let analytics = &settings.analytics;
    Ok(WorkerSettings {
        input: settings.supplier_topic().clone(),
        output: settings.topics.stats.clone(),
        dead_letters: settings.analytics_dead_letters()?,
        group: analytics.group.clone(),
        // Unique per running server: two servers of one group on one host differ by port.
        transactional_id: analytics
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}-{port}", analytics.group, host_name())),
        spec: analytics.spec,
        min_duration_ms: analytics.min_duration_ms,
        tick: analytics.tick,
        timeout: settings.timeouts.request,
        max_event_skew: analytics.max_event_skew,
        max_page_name_bytes: settings.limits.max_page_name_bytes,
        max_pages: analytics.max_pages,
        // Long enough for a broker that refused a transaction to recover; doubled while
        // runs keep failing.
        first_restart_backoff: std::time::Duration::from_secs(1),
    })
}

/// This machine's name, for ids that must differ between servers (transactional ids).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
