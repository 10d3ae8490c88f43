//! Records through the gateway, by topic: published (acknowledged by the broker) and
//! delivered (handed to a Subscribe or Consume stream's transport), plus what Consume streams
//! dead-lettered. Handlers count through [`RecordMetrics`]; topic labels are bounded.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::BoundedLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: Arc<str>,
}

/// The record counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct RecordMetrics {
    topics: Arc<BoundedLabels>,
    published: Family<TopicLabel, Counter>,
    delivered: Family<TopicLabel, Counter>,
    filtered: Family<TopicLabel, Counter>,
    filter_errors: Counter,
    consume_dead_letters: Counter,
}

impl RecordMetrics {
    /// Counters whose topic labels take at most `max_topics` values (then `(other)`).
    pub fn new(max_topics: usize) -> Self {
        Self {
            topics: Arc::new(BoundedLabels::new(max_topics)),
            published: Family::default(),
            delivered: Family::default(),
            filtered: Family::default(),
            filter_errors: Counter::default(),
            consume_dead_letters: Counter::default(),
        }
    }

    /// Registers the families in `registry`.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "streamgate_records_published",
            "Records published through Publish and PublishStream and acknowledged by Kafka",
            self.published.clone(),
        );
        registry.register(
            "streamgate_records_delivered",
            "Records handed to the transport of a Subscribe or Consume stream",
            self.delivered.clone(),
        );
        registry.register(
            "streamgate_records_filtered",
            "Records a Subscribe or Consume stream read and left out because its filter was false",
            self.filtered.clone(),
        );
        registry.register(
            "streamgate_filter_errors",
            "Records a stream's filter could not be evaluated on (a missing field, a type mismatch, a value over --max-filter-value-bytes); they do not match",
            self.filter_errors.clone(),
        );
    }

    /// The label of `topic`; a topic that lost its place loses its series too.
    fn label(&self, topic: &str) -> TopicLabel {
        let label = self.topics.get(topic);
        if let Some(evicted) = label.evicted {
            let evicted = TopicLabel { topic: evicted };
            self.published.remove(&evicted);
            self.delivered.remove(&evicted);
            self.filtered.remove(&evicted);
        }
        TopicLabel { topic: label.value }
    }

    /// `count` records of `topic` were acknowledged by the broker.
    pub fn published(&self, topic: &str, count: u64) {
        self.published
            .get_or_create(&self.label(topic))
            .inc_by(count);
    }

    /// `count` records of `topic` were handed to a stream's transport.
    pub fn delivered(&self, topic: &str, count: u64) {
        self.delivered
            .get_or_create(&self.label(topic))
            .inc_by(count);
    }

    /// `count` records of `topic` were left out by a stream's filter.
    pub fn filtered(&self, topic: &str, count: u64) {
        if count > 0 {
            self.filtered
                .get_or_create(&self.label(topic))
                .inc_by(count);
        }
    }

    /// A stream's filter could not be evaluated on a record.
    pub fn filter_error(&self) {
        self.filter_errors.inc();
    }

    /// The records of `topics` (one item per record) were handed to a stream's transport;
    /// counted once per run of one topic, so once per batch for a stream of one topic.
    pub fn delivered_each<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut run: Option<(&str, u64)> = None;
        for topic in topics {
            run = match run {
                Some((current, n)) if current == topic => Some((current, n + 1)),
                Some((current, n)) => {
                    self.delivered(current, n);
                    Some((topic, 1))
                }
                None => Some((topic, 1)),
            };
        }
        if let Some((topic, n)) = run {
            self.delivered(topic, n);
        }
    }

    /// A Consume stream wrote a dead letter.
    pub fn consume_dead_letter(&self) {
        self.consume_dead_letters.inc();
    }

    /// Dead letters written by Consume streams so far.
    pub fn consume_dead_letters(&self) -> u64 {
        self.consume_dead_letters.get()
    }
}
