//! Admission: the slots a long-lived stream holds while it is served. Subscribe and Consume
//! share one kind of slot (each holds a Kafka consumer), PublishStream and WatchPageStats
//! have their own. A stream takes its slot when it opens — after its caller is authorized —
//! and gives it back when its task ends, so the counts in use are exact whatever way the
//! stream ends.
//!
//! Slots are shared fairly:
//! - each principal holds at most its own share of every kind (`--principal-max-*`, or the
//!   principal's `limits` in the auth file), so one tenant cannot take every slot;
//! - the last `--admin-reserved-slots` of every kind are for principals with `admin` only,
//!   so whatever the others hold, an admin can still subscribe, consume, publish and watch;
//! - a server without authentication has one caller, so only the server's totals apply.
//!
//! This is the one place that decides whether a stream may open: the gateway asks it, the
//! metrics read how many slots are in use from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::auth::{Credential, Need, Principal};
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
    /// Every kind, in the order of [`Admission`]'s counts.
    pub const ALL: [Slot; 3] = [Slot::Stream, Slot::PublishStream, Slot::Watcher];

    /// What a slot of this kind serves, as messages name it.
    pub fn serves(self) -> &'static str {
        match self {
            Slot::Stream => "Subscribe and Consume streams",
            Slot::PublishStream => "PublishStream calls",
            Slot::Watcher => "WatchPageStats watchers",
        }
    }

    /// The flag that sets how many the server has.
    pub fn flag(self) -> &'static str {
        match self {
            Slot::Stream => "--max-subscriptions",
            Slot::PublishStream => "--max-publish-streams",
            Slot::Watcher => "--max-watchers",
        }
    }

    /// The flag that sets each principal's share, and the auth file's key that overrides it.
    pub fn principal_flag(self) -> (&'static str, &'static str) {
        match self {
            Slot::Stream => ("--principal-max-subscriptions", "subscriptions"),
            Slot::PublishStream => ("--principal-max-publish-streams", "publish_streams"),
            Slot::Watcher => ("--principal-max-watchers", "watchers"),
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

/// No slot for this caller: which limit, of whom, was hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Every slot of the kind is taken.
    #[error("the server already serves its maximum of {limit} {} ({})", slot.serves(), slot.flag())]
    Server {
        /// The kind of slot.
        slot: Slot,
        /// How many there are.
        limit: usize,
    },
    /// Every slot open to principals without `admin` is taken; the rest are reserved.
    #[error(
        "the server serves {open} {}, all it opens to principals without admin: the other {reserved} of {} are reserved to admin (--admin-reserved-slots)",
        slot.serves(), slot.flag()
    )]
    Shared {
        /// The kind of slot.
        slot: Slot,
        /// Slots open to principals without `admin`.
        open: usize,
        /// Slots kept for admins.
        reserved: usize,
    },
    /// The principal holds its share.
    #[error(
        "principal {principal:?} already holds its maximum of {limit} {} ({}, or `limits.{}` of its auth-file entry)",
        slot.serves(), slot.principal_flag().0, slot.principal_flag().1
    )]
    Principal {
        /// The kind of slot.
        slot: Slot,
        /// Who.
        principal: String,
        /// Its share.
        limit: usize,
    },
}

/// A slot, held by the stream's task until it ends.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    slot: Slot,
    /// The principal whose share it counts in; `None` on an open server.
    principal: Option<Arc<str>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let i = self.slot.index();
        let mut counts = self.admission.lock();
        counts.total[i] = counts.total[i].saturating_sub(1);
        if let Some(name) = &self.principal
            && let Some(held) = counts.by_principal.get_mut(name)
        {
            held[i] = held[i].saturating_sub(1);
            if *held == [0; 3] {
                counts.by_principal.remove(name);
            }
        }
    }
}

/// The slots of every kind, and who holds them.
#[derive(Debug)]
pub struct Admission {
    /// The server's slots of each kind.
    limits: [usize; 3],
    /// Each principal's default share of each kind.
    shares: [usize; 3],
    /// Slots of each kind only admins may take.
    reserved: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: [usize; 3],
    /// Only principals holding a slot: at most as many entries as slots.
    by_principal: HashMap<Arc<str>, [usize; 3]>,
}

impl Admission {
    /// The slots `limits` allow.
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            limits: [
                limits.max_subscriptions,
                limits.max_publish_streams,
                limits.max_watchers,
            ],
            shares: [
                limits.principal_max_subscriptions,
                limits.principal_max_publish_streams,
                limits.principal_max_watchers,
            ],
            reserved: limits.admin_reserved_slots,
            counts: Mutex::default(),
        })
    }

    /// Takes a slot of `slot`'s kind for `who`, or says which limit stops it.
    pub fn admit(self: &Arc<Self>, slot: Slot, who: &Principal) -> Result<Permit, Full> {
        let i = slot.index();
        let limit = self.limits[i];
        let open = who.credential() == Credential::Open;
        let admin = who.allows(&Need::Admin);
        let mut counts = self.lock();
        if counts.total[i] >= limit {
            return Err(Full::Server { slot, limit });
        }
        let shared = limit.saturating_sub(self.reserved);
        if !admin && counts.total[i] >= shared {
            return Err(Full::Shared {
                slot,
                open: shared,
                reserved: limit - shared,
            });
        }
        let principal = if open {
            None
        } else {
            let share = own_share(who, slot).unwrap_or(self.shares[i]);
            let held = counts
                .by_principal
                .get(who.name())
                .map_or(0, |held| held[i]);
            if held >= share {
                return Err(Full::Principal {
                    slot,
                    principal: who.name().to_owned(),
                    limit: share,
                });
            }
            // Entered only when a slot is taken: a refused name leaves nothing behind.
            let name: Arc<str> = Arc::from(who.name());
            counts.by_principal.entry(name.clone()).or_default()[i] += 1;
            Some(name)
        };
        counts.total[i] += 1;
        Ok(Permit {
            admission: self.clone(),
            slot,
            principal,
        })
    }

    /// Slots of `slot`'s kind in use now.
    pub fn in_use(&self, slot: Slot) -> usize {
        self.lock().total[slot.index()]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while counting leaves the counts as they were: keep using them.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The principal's own share of `slot`'s kind, where its auth-file entry sets one.
fn own_share(who: &Principal, slot: Slot) -> Option<usize> {
    let limits = who.slot_limits();
    match slot {
        Slot::Stream => limits.subscriptions,
        Slot::PublishStream => limits.publish_streams,
        Slot::Watcher => limits.watchers,
    }
}

#[cfg(test)]
mod tests;
