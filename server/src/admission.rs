//! Admission: the slots a long-lived stream holds while it is served. Subscribe and Consume
//! share one kind of slot (each holds a Kafka consumer), PublishStream and WatchPageStats
//! have their own. A stream takes its slot when it opens and gives it back when its task
//! ends, so the count in use is exact whatever way the stream ends.
//!
//! This is the one place that decides whether a stream may open: the gateway asks it, the
//! metrics read how many slots are in use from it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::Limits;

/// A kind of slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A Subscribe or Consume stream (`--max-subscriptions`).
    Stream,
    /// A PublishStream call (`--max-publish-streams`).
    PublishStream,
    /// A WatchPageStats stream (`--max-watchers`).
    Watcher,
}

impl Slot {
    /// Every kind, in the order of [`Admission`]'s pools.
    pub const ALL: [Slot; 3] = [Slot::Stream, Slot::PublishStream, Slot::Watcher];

    /// What a slot of this kind serves, as messages name it.
    pub fn serves(self) -> &'static str {
        match self {
            Slot::Stream => "Subscribe and Consume streams",
            Slot::PublishStream => "PublishStream calls",
            Slot::Watcher => "WatchPageStats watchers",
        }
    }

    /// The flag that sets how many there are.
    pub fn flag(self) -> &'static str {
        match self {
            Slot::Stream => "--max-subscriptions",
            Slot::PublishStream => "--max-publish-streams",
            Slot::Watcher => "--max-watchers",
        }
    }

    fn index(self) -> usize {
        match self {
            Slot::Stream => 0,
            Slot::PublishStream => 1,
            Slot::Watcher => 2,
        }
    }
}

/// Every slot of a kind is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server already serves its maximum of {limit} {} ({})", slot.serves(), slot.flag())]
pub struct Full {
    /// The kind of slot.
    pub slot: Slot,
    /// How many there are.
    pub limit: usize,
}

/// A slot, held by the stream's task until it ends.
#[derive(Debug)]
pub struct Permit {
    _held: OwnedSemaphorePermit,
}

/// The slots of every kind.
#[derive(Debug)]
pub struct Admission {
    pools: [Pool; 3],
}

#[derive(Debug)]
struct Pool {
    free: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    /// The slots `limits` allow.
    pub fn new(limits: &Limits) -> Self {
        let pool = |limit: usize| Pool {
            free: Arc::new(Semaphore::new(limit)),
            limit,
        };
        Self {
            pools: [
                pool(limits.max_subscriptions),
                pool(limits.max_publish_streams),
                pool(limits.max_watchers),
            ],
        }
    }

    /// Takes a slot of `slot`'s kind, or says that all are taken.
    pub fn admit(&self, slot: Slot) -> Result<Permit, Full> {
        let pool = &self.pools[slot.index()];
        pool.free
            .clone()
            .try_acquire_owned()
            .map(|held| Permit { _held: held })
            .map_err(|_| Full {
                slot,
                limit: pool.limit,
            })
    }

    /// Slots of `slot`'s kind in use now.
    pub fn in_use(&self, slot: Slot) -> usize {
        let pool = &self.pools[slot.index()];
        pool.limit.saturating_sub(pool.free.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(n: usize) -> Limits {
        use clap::Parser;
        let config = crate::config::Config::parse_from(["streamgate-server"]);
        let defaults = crate::settings::Settings::resolve(&config).expect("default settings");
        Limits {
            max_subscriptions: n,
            max_publish_streams: n + 1,
            max_watchers: n + 2,
            ..defaults.limits
        }
    }

    #[test]
    fn a_kind_is_full_at_its_limit_and_frees_a_slot_when_a_permit_drops() {
        let admission = Admission::new(&limits(2));
        let first = admission.admit(Slot::Stream).expect("first slot");
        let _second = admission.admit(Slot::Stream).expect("second slot");
        let full = admission.admit(Slot::Stream).expect_err("no third slot");
        assert_eq!(
            full,
            Full {
                slot: Slot::Stream,
                limit: 2
            }
        );
        assert!(full.to_string().contains("--max-subscriptions"), "{full}");
        assert_eq!(admission.in_use(Slot::Stream), 2);
        drop(first);
        assert_eq!(admission.in_use(Slot::Stream), 1);
        admission.admit(Slot::Stream).expect("a slot again");
    }

    #[test]
    fn kinds_do_not_share_slots() {
        let admission = Admission::new(&limits(1));
        let _stream = admission.admit(Slot::Stream).expect("stream");
        let held: Vec<_> = (0..2)
            .map(|_| {
                admission
                    .admit(Slot::PublishStream)
                    .expect("publish stream")
            })
            .collect();
        assert_eq!(held.len(), 2);
        for slot in Slot::ALL {
            let expected = match slot {
                Slot::Stream => 1,
                Slot::PublishStream => 2,
                Slot::Watcher => 0,
            };
            assert_eq!(admission.in_use(slot), expected, "{slot:?}");
        }
        let full = admission
            .admit(Slot::PublishStream)
            .expect_err("publish streams full");
        assert!(full.to_string().contains("--max-publish-streams"), "{full}");
        admission.admit(Slot::Watcher).expect("watchers are apart");
    }
}
