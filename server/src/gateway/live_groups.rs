//! The consumer groups this server's Subscribe and Consume streams are in. On a broker that
//! can describe groups this adds nothing; on one that cannot (the embedded broker has no
//! ListGroups or DescribeGroups) it is what ListGroups can list and what tells a reset that
//! a group still has members here.
//!
//! Each stream is held by a weak reference to its consumer, so the count follows the
//! streams without a guard to drop, and the table stays bounded: live entries by the
//! stream slots, remembered names by [`MAX_REMEMBERED`].

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

/// Group names remembered after their streams ended.
pub const MAX_REMEMBERED: usize = 1024;

type Member = Weak<dyn Any + Send + Sync>;

/// See the module.
#[derive(Default)]
pub struct LiveGroups {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, Vec<Member>>,
    remembered: VecDeque<String>,
}

impl LiveGroups {
    /// A stream of `group` whose consumer is `member` started.
    pub fn joined<T: Any + Send + Sync>(&self, group: &str, member: &Arc<T>) {
        let member: Arc<dyn Any + Send + Sync> = member.clone();
        let mut inner = self.lock();
        inner.prune();
        inner
            .live
            .entry(group.to_owned())
            .or_default()
            .push(Arc::downgrade(&member));
        if !inner.remembered.iter().any(|g| g == group) {
            if inner.remembered.len() == MAX_REMEMBERED {
                inner.remembered.pop_front();
            }
            inner.remembered.push_back(group.to_owned());
        }
    }

    /// Streams of `group` open on this server now.
    pub fn members(&self, group: &str) -> usize {
        let mut inner = self.lock();
        inner.prune();
        inner.live.get(group).map_or(0, Vec::len)
    }

    /// Every group with a stream now or since the start (the most recent
    /// [`MAX_REMEMBERED`]), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut inner = self.lock();
        inner.prune();
        let mut names: Vec<String> = inner.remembered.iter().cloned().collect();
        names.extend(inner.live.keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn prune(&mut self) {
        self.live.retain(|_, members| {
            members.retain(|m| m.strong_count() > 0);
            !members.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_streams_while_their_consumers_live_and_remembers_names_bounded() {
        let groups = LiveGroups::default();
        let (a, b) = (Arc::new(1u8), Arc::new(2u8));
        groups.joined("billing", &a);
        groups.joined("billing", &b);
        assert_eq!(groups.members("billing"), 2);
        drop(a);
        assert_eq!(groups.members("billing"), 1);
        drop(b);
        assert_eq!(groups.members("billing"), 0);
        assert_eq!(groups.names(), ["billing"]);
        let keep = Arc::new(0u8);
        for i in 0..MAX_REMEMBERED + 10 {
            groups.joined(&format!("g{i}"), &keep);
        }
        assert_eq!(
            groups.names().len(),
            MAX_REMEMBERED + 10,
            "live ones all listed"
        );
        drop(keep);
        assert_eq!(groups.names().len(), MAX_REMEMBERED, "ended ones bounded");
    }
}
