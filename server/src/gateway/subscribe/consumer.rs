//! The Kafka consumer behind one Subscribe stream, and the rebalance hook that tells the
//! stream when a group assignment changed.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use tokio::sync::Notify;

/// The consumer of one subscription.
pub type SubscriptionConsumer = StreamConsumer<SubscriptionContext>;

/// Flags assignment changes; runs on librdkafka's poll path, so it only sets a flag.
#[derive(Default)]
pub struct SubscriptionContext {
    changed: AtomicBool,
    wake: Notify,
}

impl SubscriptionContext {
    /// Whether the assignment changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// Resolves once the assignment may have changed.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

impl ClientContext for SubscriptionContext {}

impl ConsumerContext for SubscriptionContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "subscription rebalance failed");
        }
        self.changed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}
