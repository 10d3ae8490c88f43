//! Label values that clients choose — topic and group names — kept to a bounded set, so that
//! no client can grow the number of series without bound: the first `limit` distinct values
//! seen keep their own series, every later one is counted under [`OTHER`].

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

/// The label value that stands for every value beyond the limit.
pub const OTHER: &str = "(other)";

/// A bounded set of label values (`--metrics-max-label-values`).
#[derive(Debug)]
pub struct BoundedLabels {
    limit: usize,
    admitted: RwLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl BoundedLabels {
    /// At most `limit` distinct values, then [`OTHER`].
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            admitted: RwLock::default(),
            other: Arc::from(OTHER),
        }
    }

    /// The label to use for `value`: itself while there is room (or once admitted), else
    /// [`OTHER`].
    pub fn get(&self, value: &str) -> Arc<str> {
        if let Some(known) = self
            .admitted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
        {
            return known.clone();
        }
        let mut admitted = self
            .admitted
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = admitted.get(value) {
            return known.clone();
        }
        if admitted.len() >= self.limit {
            return self.other.clone();
        }
        let value: Arc<str> = Arc::from(value);
        admitted.insert(value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_beyond_the_limit_share_one_label() {
        let labels = BoundedLabels::new(2);
        assert_eq!(&*labels.get("a"), "a");
        assert_eq!(&*labels.get("b"), "b");
        assert_eq!(&*labels.get("c"), OTHER);
        assert_eq!(&*labels.get("a"), "a", "admitted values keep their label");
        for i in 0..10_000 {
            assert_eq!(&*labels.get(&format!("attack-{i}")), OTHER);
        }
    }
}
