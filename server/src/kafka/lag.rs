//! Consumer lag, as librdkafka reports it in its statistics. Every consumer of a group — the
//! analytics worker, the transform, grouped Subscribe and Consume streams — carries a
//! [`LagReporter`] in its context; every few seconds librdkafka hands it the consumer's
//! statistics, and it keeps, per assigned partition, how far the group's committed offset is
//! behind the end of the partition. The metrics read the latest report of every consumer
//! still open; a consumer's report goes when the consumer does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use serde::Deserialize;

/// How often a reporting consumer sends its statistics, in milliseconds.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// Asks the consumer of `config` for statistics, which its [`LagReporter`] reads.
pub fn enable(config: &mut ClientConfig) {
    config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
}

/// The lag of one partition, as one consumer last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The consumer's group.
    pub group: Arc<str>,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Records between the group's committed offset and the end of the partition.
    pub lag: i64,
}

/// The latest report of every open reporting consumer of this process.
#[derive(Debug, Default)]
pub struct LagTable {
    next_id: AtomicU64,
    reports: Mutex<HashMap<u64, Vec<PartitionLag>>>,
}

impl LagTable {
    /// A reporter for a new consumer of `group`.
    pub fn reporter(self: &Arc<Self>, group: &str) -> LagReporter {
        LagReporter {
            table: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            group: Arc::from(group),
        }
    }

    /// Every partition some open consumer reported, with its latest lag.
    pub fn partitions(&self) -> Vec<PartitionLag> {
        self.lock().values().flatten().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<PartitionLag>>> {
        // A report is replaced whole, so a panic elsewhere cannot leave one half-written.
        self.reports.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One consumer's link to the [`LagTable`]; its report is removed when it is dropped (with
/// the consumer's context).
#[derive(Debug)]
pub struct LagReporter {
    table: Arc<LagTable>,
    id: u64,
    group: Arc<str>,
}

impl LagReporter {
    /// Reads a statistics document of librdkafka's; a document it cannot read is ignored
    /// (the previous report stays).
    pub fn report(&self, statistics: &[u8]) {
        let Some(partitions) = parse(statistics, &self.group) else {
            return;
        };
        self.table.lock().insert(self.id, partitions);
    }
}

impl Drop for LagReporter {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
    }
}

/// The context of a consumer that needs nothing but lag reporting (the transform's).
#[derive(Debug)]
pub struct LagContext(pub LagReporter);

impl ClientContext for LagContext {
    fn stats_raw(&self, statistics: &[u8]) {
        self.0.report(statistics);
    }
}

impl ConsumerContext for LagContext {}

/// The part of librdkafka's statistics read here (`STATISTICS.md` in librdkafka).
#[derive(Deserialize)]
struct Statistics {
    #[serde(default)]
    topics: HashMap<String, TopicStatistics>,
}

#[derive(Deserialize)]
struct TopicStatistics {
    #[serde(default)]
    partitions: HashMap<String, PartitionStatistics>,
}

#[derive(Deserialize)]
struct PartitionStatistics {
    partition: i32,
    /// `-1` while unknown (no committed offset or no end offset yet).
    #[serde(default = "unknown")]
    consumer_lag: i64,
}

fn unknown() -> i64 {
    -1
}

/// The known lags of the partitions in `statistics` (librdkafka's internal partition `-1`
/// and partitions it has no figure for are left out).
fn parse(statistics: &[u8], group: &Arc<str>) -> Option<Vec<PartitionLag>> {
    let statistics: Statistics = serde_json::from_slice(statistics).ok()?;
    let mut partitions: Vec<PartitionLag> = statistics
        .topics
        .into_iter()
        .flat_map(|(topic, t)| {
            t.partitions
                .into_values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(move |p| PartitionLag {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: p.partition,
                    lag: p.consumer_lag,
                })
        })
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Some(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATISTICS: &str = r#"{"name":"streamgate#consumer-1","type":"consumer","brokers":{},
      "topics":{"R2":{"topic":"R2","partitions":{
        "0":{"partition":0,"consumer_lag":12,"hi_offset":40},
        "1":{"partition":1,"consumer_lag":-1},
        "-1":{"partition":-1,"consumer_lag":-1}}}}}"#;

    #[test]
    fn reports_known_lags_and_forgets_a_consumer_when_it_goes() {
        let table = Arc::new(LagTable::default());
        let reporter = table.reporter("g");
        reporter.report(STATISTICS.as_bytes());
        let expected = vec![PartitionLag {
            group: Arc::from("g"),
            topic: "R2".into(),
            partition: 0,
            lag: 12,
        }];
        assert_eq!(table.partitions(), expected);
        // Garbage keeps the last report.
        reporter.report(b"{not json");
        assert_eq!(table.partitions(), expected);
        drop(reporter);
        assert!(table.partitions().is_empty());
    }
}
