//! The `streamgate_*` families read at each scrape from what the server keeps anyway: the
//! stages' counters (supplier, transform, analytics worker, restarts), the stream slots in
//! use, and the consumer lag the group consumers last reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labels::heaviest;
use super::records::RecordMetrics;
use crate::admission::{Admission, Slot};
use crate::kafka::lag::LagTable;
use crate::stages::StageCounters;

/// Reads the server's counters at each scrape.
pub struct ServerCollector {
    pub(super) stages: StageCounters,
    pub(super) admission: Arc<Admission>,
    pub(super) records: RecordMetrics,
    pub(super) lag: Arc<LagTable>,
    pub(super) connections: Arc<crate::connections::Counters>,
    pub(super) quotas: Arc<crate::quota::Quotas>,
    /// Distinct groups, and topics, the lag shows apart (the ones furthest behind).
    pub(super) max_label_values: usize,
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCollector")
    }
}

type Result = std::result::Result<(), std::fmt::Error>;

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// A counter family with one label, `key`, from `(value, count)` pairs.
fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    key: &str,
    series: &[(&str, u64)],
) -> Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in series {
        ConstCounter::new(*count).encode(family.encode_family(&[(key, *value)])?)?;
    }
    Ok(())
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result {
        self.encode_streams(&mut encoder)?;
        self.encode_supplier_and_transform(&mut encoder)?;
        self.encode_analytics(&mut encoder)?;
        self.encode_dead_letters_and_restarts(&mut encoder)?;
        self.encode_quotas(&mut encoder)?;
        self.encode_lag(&mut encoder)
    }
}

impl ServerCollector {
    fn encode_streams(&self, encoder: &mut DescriptorEncoder) -> Result {
        for (slot, name, help) in [
            (
                Slot::Stream,
                "streamgate_subscriptions_active",
                "Open Subscribe and Consume streams (at most --max-subscriptions)",
            ),
            (
                Slot::Watcher,
                "streamgate_watchers_active",
                "Open WatchPageStats streams (at most --max-watchers)",
            ),
            (
                Slot::PublishStream,
                "streamgate_publish_streams_active",
                "Open PublishStream calls (at most --max-publish-streams)",
            ),
        ] {
            let in_use = i64::try_from(self.admission.in_use(slot)).unwrap_or(i64::MAX);
            gauge(encoder, name, help, in_use)?;
        }
        counter(
            encoder,
            "streamgate_connections_refused",
            "Connections closed as soon as accepted: over --max-connections or --max-connections-per-ip",
            self.connections.refused.load(Ordering::Relaxed),
        )?;
        counter(
            encoder,
            "streamgate_connections_timed_out",
            "Connections closed for sending nothing, or not finishing TLS, within --handshake-timeout",
            self.connections.timed_out.load(Ordering::Relaxed),
        )?;
        counter(
            encoder,
            "streamgate_connections_idle_closed",
            "Connections closed after --idle-timeout without an open call",
            self.connections.idle_closed.load(Ordering::Relaxed),
        )
    }

    fn encode_supplier_and_transform(&self, encoder: &mut DescriptorEncoder) -> Result {
        let (sent, errors) = self.stages.supplier.sent_and_errors();
        counter(
            encoder,
            "streamgate_supplier_sent",
            "PageEvents the supplier wrote and the broker acknowledged",
            sent,
        )?;
        counter(
            encoder,
            "streamgate_supplier_errors",
            "Supplier sends that failed or were not acknowledged in time",
            errors,
        )?;
        let Some((transform, _)) = &self.stages.transform else {
            return Ok(());
        };
        counter(
            encoder,
            "streamgate_transform_records",
            "Records the transform wrote to its output and the broker acknowledged",
            transform.transformed.load(Ordering::Relaxed),
        )?;
        counter(
            encoder,
            "streamgate_transform_send_errors",
            "Failed attempts of the transform at an output or a dead letter (each retried or dead-lettered)",
            transform.send_errors.load(Ordering::Relaxed),
        )
    }

    fn encode_analytics(&self, encoder: &mut DescriptorEncoder) -> Result {
        let Some(worker) = &self.stages.worker else {
            return Ok(());
        };
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let (counted, filtered, late, malformed, future) = (
            load(&worker.counted),
            load(&worker.filtered),
            load(&worker.late),
            load(&worker.malformed),
            load(&worker.future),
        );
        counter(
            encoder,
            "streamgate_analytics_records",
            "Input records the analytics worker took (counted, filtered, late, malformed or future)",
            counted + filtered + late + malformed + future,
        )?;
        counter(
            encoder,
            "streamgate_analytics_counted",
            "Input records counted in a window",
            counted,
        )?;
        counter(
            encoder,
            "streamgate_analytics_filtered",
            "Input records left out by the duration filter (--min-duration)",
            filtered,
        )?;
        counter(
            encoder,
            "streamgate_analytics_late",
            "Input records that came after their window closed (window end + --grace)",
            late,
        )?;
        counter(
            encoder,
            "streamgate_analytics_malformed",
            "Input records that are not PageEvents, or whose page name is too long (dead-lettered)",
            malformed,
        )?;
        counter(
            encoder,
            "streamgate_analytics_future",
            "Input records stamped more than --max-event-skew ahead of the worker's clock (dead-lettered)",
            future,
        )?;
        labelled_counter(
            encoder,
            "streamgate_analytics_transactions",
            "Transactions of the analytics worker, by outcome",
            "outcome",
            &[
                ("committed", load(&worker.transactions)),
                ("aborted", load(&worker.aborted)),
            ],
        )?;
        counter(
            encoder,
            "streamgate_analytics_transaction_retries",
            "Calls of the analytics worker's transactions retried after a retriable failure (a broker outage, a reconnect to the coordinator); the transaction was kept",
            load(&worker.transaction_retries),
        )?;
        counter(
            encoder,
            "streamgate_analytics_producer_replacements",
            "Transactional producers of the analytics worker replaced without a restart: the abort of a transaction that failed in an outage did not go through, and a new producer fenced the stuck one",
            load(&worker.producer_replacements),
        )?;
        let seconds = ConstCounter::new(load(&worker.transaction_micros) as f64 / 1e6);
        seconds.encode(encoder.encode_descriptor(
            "streamgate_analytics_transaction_seconds",
            "Time the analytics worker spent in transactions (it counts nothing meanwhile); divided by streamgate_analytics_transactions_total, the time one takes",
            None,
            seconds.metric_type(),
        )?)?;
        counter(
            encoder,
            "streamgate_analytics_restarts",
            "Runs of the analytics worker that ended in an error or a panic and were restarted",
            load(&worker.restarts),
        )
    }

    fn encode_dead_letters_and_restarts(&self, encoder: &mut DescriptorEncoder) -> Result {
        let stages = &self.stages;
        let mut dead_letters = vec![("consume", self.records.consume_dead_letters())];
        if let Some((transform, _)) = &stages.transform {
            dead_letters.push(("transform", transform.dead_lettered.load(Ordering::Relaxed)));
        }
        if let Some(worker) = &stages.worker {
            dead_letters.push(("analytics", worker.dead_letters.load(Ordering::Relaxed)));
        }
        labelled_counter(
            encoder,
            "streamgate_dead_letters",
            "Records written to a dead-letter topic, by stage",
            "stage",
            &dead_letters,
        )?;
        let mut restarts = vec![
            ("supplier", stages.supplier.restarts()),
            ("stats hub", stages.hub.restarts()),
        ];
        if let Some((_, r)) = &stages.transform {
            restarts.push(("transform", r.count()));
        }
        if let Some(r) = &stages.log_consumer {
            restarts.push(("log consumer", r.count()));
        }
        if let Some(worker) = &stages.worker {
            restarts.push(("analytics worker", worker.restarts.load(Ordering::Relaxed)));
        }
        labelled_counter(
            encoder,
            "streamgate_task_restarts",
            "Restarts of a supervised background task after a panic or a failed run",
            "task",
            &restarts,
        )?;
        counter(
            encoder,
            "streamgate_panics",
            "Panics caught in any task of this process (the task was restarted or its stream ended with INTERNAL)",
            crate::supervisor::panics(),
        )
    }

    /// Per principal: the names come from the auth file or a JWT's `sub`, so only the
    /// principals most refused or slowed keep a label (`--metrics-max-label-values`).
    fn encode_quotas(&self, encoder: &mut DescriptorEncoder) -> Result {
        let counts = self.quotas.counts();
        let label = heaviest(
            counts.iter().map(|(name, c)| {
                let weight = c.publish_refused as f64 + c.read_throttled_seconds * 1000.0;
                (&**name, weight as i64)
            }),
            self.max_label_values,
        );
        let mut refused: HashMap<Arc<str>, u64> = HashMap::new();
        let mut slowed: HashMap<Arc<str>, f64> = HashMap::new();
        for (name, c) in &counts {
            *refused.entry(label(name)).or_default() += c.publish_refused;
            *slowed.entry(label(name)).or_default() += c.read_throttled_seconds;
        }
        let mut family = encoder.encode_descriptor(
            "streamgate_quota_publish_refused",
            "Records refused because their principal was over its publish quota",
            None,
            MetricType::Counter,
        )?;
        for (principal, count) in sorted(refused) {
            ConstCounter::new(count)
                .encode(family.encode_family(&[("principal", &*principal)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "streamgate_quota_read_throttled_seconds",
            "Time a principal's streams waited for its read quota",
            None,
            MetricType::Counter,
        )?;
        for (principal, seconds) in sorted(slowed) {
            ConstCounter::new(seconds)
                .encode(family.encode_family(&[("principal", &*principal)])?)?;
        }
        Ok(())
    }

    fn encode_lag(&self, encoder: &mut DescriptorEncoder) -> Result {
        // The groups and topics furthest behind keep their labels, the rest show as (other);
        // two consumers may both report a partition around a rebalance: keep the larger.
        let reported = self.lag.partitions();
        let group_label = heaviest(
            reported.iter().map(|p| (&*p.group, p.lag)),
            self.max_label_values,
        );
        let topic_label = heaviest(
            reported.iter().map(|p| (p.topic.as_str(), p.lag)),
            self.max_label_values,
        );
        let mut lags: HashMap<(Arc<str>, Arc<str>, i32), i64> = HashMap::new();
        for p in &reported {
            let key = (group_label(&p.group), topic_label(&p.topic), p.partition);
            let lag = lags.entry(key).or_insert(0);
            *lag = (*lag).max(p.lag);
        }
        let mut series: Vec<_> = lags.into_iter().collect();
        series.sort();
        let mut family = encoder.encode_descriptor(
            "streamgate_consumer_lag",
            "Records between a group's committed offset and the end of the partition, as this server's consumers of the group last reported it (every 5 s)",
            None,
            MetricType::Gauge,
        )?;
        for ((group, topic, partition), lag) in series {
            let labels = LagLabels {
                group,
                topic,
                partition,
            };
            ConstGauge::new(lag).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct LagLabels {
    group: Arc<str>,
    topic: Arc<str>,
    partition: i32,
}

/// Series in label order, so a scrape reads the same from one time to the next.
fn sorted<V>(series: HashMap<Arc<str>, V>) -> Vec<(Arc<str>, V)> {
    let mut series: Vec<_> = series.into_iter().collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}
