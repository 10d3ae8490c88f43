//! Label values that clients choose — topic and group names — kept to a bounded set, so that
//! no client can grow the number of series without bound. At most `limit` values have series
//! of their own; a further value takes the place of the least recently used one if that one
//! has been idle for [`IDLE`] (its series go: a counter that comes back restarts from zero,
//! which `rate()` handles), and is counted under [`OTHER`] otherwise. So the values in use
//! keep their series, and a burst of names cannot crowd them out for good.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The label value that stands for every value beyond the limit.
pub const OTHER: &str = "(other)";

/// How long a value must go unused before a new one may take its place.
pub const IDLE: Duration = Duration::from_secs(600);

/// A bounded set of label values (`--metrics-max-label-values`).
#[derive(Debug)]
pub struct BoundedLabels {
    limit: usize,
    idle: Duration,
    started: Instant,
    /// Each admitted value and when it was last used (milliseconds since `started`).
    admitted: RwLock<HashMap<Arc<str>, AtomicU64>>,
    other: Arc<str>,
}

/// What [`BoundedLabels::get`] decided.
pub struct Label {
    /// The label to count under.
    pub value: Arc<str>,
    /// A value that lost its place to this one: its series are to be removed.
    pub evicted: Option<Arc<str>>,
}

impl BoundedLabels {
    /// At most `limit` values with series of their own.
    pub fn new(limit: usize) -> Self {
        Self::with_idle(limit, IDLE)
    }

    fn with_idle(limit: usize, idle: Duration) -> Self {
        Self {
            limit,
            idle,
            started: Instant::now(),
            admitted: RwLock::default(),
            other: Arc::from(OTHER),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The label to use for `value` now.
    pub fn get(&self, value: &str) -> Label {
        self.get_at(value, self.now())
    }

    /// The label to use for `value` at `now` (milliseconds since the set was made).
    fn get_at(&self, value: &str, now: u64) -> Label {
        let admitted = |value: Arc<str>| Label {
            value,
            evicted: None,
        };
        {
            let read = self.admitted.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((known, used)) = read.get_key_value(value) {
                used.store(now, Ordering::Relaxed);
                return admitted(known.clone());
            }
        }
        let mut write = self
            .admitted
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((known, used)) = write.get_key_value(value) {
            used.store(now, Ordering::Relaxed);
            return admitted(known.clone());
        }
        let mut evicted = None;
        if write.len() >= self.limit {
            let idle_ms = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
            let oldest = write
                .iter()
                .min_by_key(|(_, used)| used.load(Ordering::Relaxed))
                .filter(|(_, used)| now.saturating_sub(used.load(Ordering::Relaxed)) >= idle_ms)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(oldest) => {
                    write.remove(&oldest);
                    evicted = Some(oldest);
                }
                None => return admitted(self.other.clone()),
            }
        }
        let value: Arc<str> = Arc::from(value);
        write.insert(value.clone(), AtomicU64::new(now));
        Label { value, evicted }
    }
}

/// The `limit` keys with the largest `weight` keep their own label, the rest become [`OTHER`]:
/// for gauges, which are computed afresh at each scrape.
pub fn heaviest<'a>(
    weights: impl IntoIterator<Item = (&'a str, i64)>,
    limit: usize,
) -> impl Fn(&str) -> Arc<str> {
    let mut totals: HashMap<&str, i64> = HashMap::new();
    for (key, weight) in weights {
        *totals.entry(key).or_default() += weight;
    }
    let mut ranked: Vec<(&str, i64)> = totals.into_iter().collect();
    // Heaviest first; equal weights in name order, so the choice is stable between scrapes.
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: HashMap<String, Arc<str>> = ranked
        .into_iter()
        .take(limit)
        .map(|(key, _)| (key.to_owned(), Arc::from(key)))
        .collect();
    let other: Arc<str> = Arc::from(OTHER);
    move |key| kept.get(key).cloned().unwrap_or_else(|| other.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_beyond_the_limit_share_one_label() {
        let labels = BoundedLabels::new(2);
        assert_eq!(&*labels.get("a").value, "a");
        assert_eq!(&*labels.get("b").value, "b");
        assert_eq!(&*labels.get("c").value, OTHER);
        assert_eq!(
            &*labels.get("a").value,
            "a",
            "admitted values keep their label"
        );
        for i in 0..10_000 {
            assert_eq!(&*labels.get(&format!("attack-{i}")).value, OTHER);
        }
    }

    #[test]
    fn an_idle_value_makes_room_for_a_new_one() {
        let labels = BoundedLabels::with_idle(2, Duration::from_millis(100));
        labels.get_at("old", 0);
        labels.get_at("busy", 10);
        labels.get_at("busy", 150);
        assert_eq!(
            &*labels.get_at("early", 60).value,
            OTHER,
            "nobody idle long enough"
        );
        let newcomer = labels.get_at("new", 160);
        assert_eq!(&*newcomer.value, "new");
        assert_eq!(
            newcomer.evicted.as_deref(),
            Some("old"),
            "the least recently used"
        );
        assert_eq!(&*labels.get_at("busy", 170).value, "busy");
        assert_eq!(
            &*labels.get_at("old", 180).value,
            OTHER,
            "busy and new are in use"
        );
    }

    #[test]
    fn the_heaviest_keys_keep_their_labels() {
        let label = heaviest([("a", 5), ("b", 50), ("c", 7), ("a", 10)], 2);
        assert_eq!(&*label("b"), "b");
        assert_eq!(&*label("a"), "a", "15 in all");
        assert_eq!(&*label("c"), OTHER);
        assert_eq!(&*label("never-seen"), OTHER);
    }
}
