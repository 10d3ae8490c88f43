//! Per-principal rate quotas: records and bytes a second, for publishing and for reading,
//! each a token bucket with a burst. Defaults come from the flags (`--quota-*`, 0 = none),
//! and an auth-file entry's `quotas` overrides them for its principal.
//!
//! A principal over its publish quota is refused (RESOURCE_EXHAUSTED, saying when to retry:
//! Confluent REST Proxy's produce quotas answer the same way); one over its read quota is
//! slowed, its streams waiting before the next batch. Other principals are unaffected: each
//! has its own buckets.

mod bucket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::auth::{Principal, QuotaOverrides};
use bucket::Bucket;

/// Principals tracked at once; past it, idle ones (full buckets) are forgotten.
const MAX_TRACKED: usize = 10_000;

/// The label under which principals beyond [`MAX_TRACKED`] are counted.
const OTHER: &str = "(other)";

/// The server's default quotas, per principal; 0 is no quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaSettings {
    /// Records a second a principal may publish (`--quota-publish-records`).
    pub publish_records: f64,
    /// Bytes a second (key + value + headers) a principal may publish.
    pub publish_bytes: f64,
    /// Records a second a principal's streams may read.
    pub read_records: f64,
    /// Bytes a second a principal's streams may read.
    pub read_bytes: f64,
    /// How much above its rate a principal may go at once, as time at that rate.
    pub burst: Duration,
}

/// A publish the principal's quota refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "principal {principal:?} is over its quota of {limit} {what} ({flag}, or quotas.{key} of its auth-file entry): retry in {}ms",
    retry_after.as_millis()
)]
pub struct OverQuota {
    /// Who.
    pub principal: String,
    /// Which quota, e.g. "published records a second".
    pub what: &'static str,
    /// Its rate.
    pub limit: f64,
    /// The flag that sets it.
    pub flag: &'static str,
    /// The auth file's key that overrides it.
    pub key: &'static str,
    /// When the publish would fit.
    pub retry_after: Duration,
}

/// What a principal's quotas did, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QuotaCounts {
    /// Records refused for the publish quota.
    pub publish_refused: u64,
    /// Seconds its streams waited for the read quota.
    pub read_throttled_seconds: f64,
}

#[derive(Debug, Default)]
struct Buckets {
    publish_records: Option<Bucket>,
    publish_bytes: Option<Bucket>,
    read_records: Option<Bucket>,
    read_bytes: Option<Bucket>,
}

/// Every principal's buckets.
#[derive(Debug)]
pub struct Quotas {
    settings: QuotaSettings,
    buckets: Mutex<HashMap<Arc<str>, Buckets>>,
    counts: Mutex<HashMap<Arc<str>, QuotaCounts>>,
}

impl Quotas {
    /// Quotas with `settings` as every principal's default.
    pub fn new(settings: QuotaSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            buckets: Mutex::default(),
            counts: Mutex::default(),
        })
    }

    /// Takes one record of `bytes` from `who`'s publish quota, or says when to retry.
    pub fn publish(&self, who: &Principal, bytes: usize) -> Result<(), OverQuota> {
        let rates = self.rates(who);
        if rates.publish_records == 0.0 && rates.publish_bytes == 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let burst = self.settings.burst;
        let refused = {
            let mut all = lock(&self.buckets);
            let buckets = entry(&mut all, who.name(), now);
            let records = take_or_wait(
                &mut buckets.publish_records,
                rates.publish_records,
                1.0,
                burst,
                now,
            );
            match records {
                Err(wait) => Some((
                    "published records a second",
                    rates.publish_records,
                    "--quota-publish-records",
                    "publish_records",
                    wait,
                )),
                Ok(()) => match take_or_wait(
                    &mut buckets.publish_bytes,
                    rates.publish_bytes,
                    bytes as f64,
                    burst,
                    now,
                ) {
                    Ok(()) => None,
                    Err(wait) => {
                        // The record does not go: give its record token back.
                        if let Some(bucket) = &mut buckets.publish_records {
                            bucket.take(-1.0, now);
                        }
                        Some((
                            "published bytes a second",
                            rates.publish_bytes,
                            "--quota-publish-bytes",
                            "publish_bytes",
                            wait,
                        ))
                    }
                },
            }
        };
        let Some((what, limit, flag, key, retry_after)) = refused else {
            return Ok(());
        };
        self.count(who.name(), |c| c.publish_refused += 1);
        Err(OverQuota {
            principal: who.name().to_owned(),
            what,
            limit,
            flag,
            key,
            retry_after,
        })
    }

    /// Takes `records` records of `bytes` from `who`'s read quota; returns how long the
    /// stream should wait before it sends them (zero within the quota).
    pub fn read(&self, who: &Principal, records: usize, bytes: usize) -> Duration {
        let rates = self.rates(who);
        if rates.read_records == 0.0 && rates.read_bytes == 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let burst = self.settings.burst;
        let wait = {
            let mut all = lock(&self.buckets);
            let buckets = entry(&mut all, who.name(), now);
            let by_records = take(
                &mut buckets.read_records,
                rates.read_records,
                records as f64,
                burst,
                now,
            );
            let by_bytes = take(
                &mut buckets.read_bytes,
                rates.read_bytes,
                bytes as f64,
                burst,
                now,
            );
            by_records.max(by_bytes)
        };
        if !wait.is_zero() {
            self.count(who.name(), |c| {
                c.read_throttled_seconds += wait.as_secs_f64()
            });
        }
        wait
    }

    /// Every principal's counts so far.
    pub fn counts(&self) -> Vec<(Arc<str>, QuotaCounts)> {
        lock(&self.counts)
            .iter()
            .map(|(name, counts)| (name.clone(), *counts))
            .collect()
    }

    /// The rates that apply to `who`: its auth-file entry's, else the flags'.
    fn rates(&self, who: &Principal) -> QuotaSettings {
        let own: QuotaOverrides = who.quotas();
        let s = self.settings;
        QuotaSettings {
            publish_records: own.publish_records.unwrap_or(s.publish_records),
            publish_bytes: own.publish_bytes.unwrap_or(s.publish_bytes),
            read_records: own.read_records.unwrap_or(s.read_records),
            read_bytes: own.read_bytes.unwrap_or(s.read_bytes),
            burst: s.burst,
        }
    }

    fn count(&self, name: &str, update: impl FnOnce(&mut QuotaCounts)) {
        let mut counts = lock(&self.counts);
        let key: Arc<str> = if counts.contains_key(name) || counts.len() < MAX_TRACKED {
            Arc::from(name)
        } else {
            Arc::from(OTHER)
        };
        update(counts.entry(key).or_default());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while counting leaves the buckets usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `name`'s buckets, made on first use; at [`MAX_TRACKED`] the idle ones are forgotten first.
fn entry<'a>(all: &'a mut HashMap<Arc<str>, Buckets>, name: &str, now: Instant) -> &'a mut Buckets {
    if !all.contains_key(name) && all.len() >= MAX_TRACKED {
        all.retain(|_, b| {
            ![
                &mut b.publish_records,
                &mut b.publish_bytes,
                &mut b.read_records,
                &mut b.read_bytes,
            ]
            .into_iter()
            .flatten()
            .all(|bucket| bucket.is_full(now))
        });
    }
    all.entry(Arc::from(name)).or_default()
}

/// Takes `n` from the bucket of a `rate` (none at 0), making it on first use.
fn take_or_wait(
    slot: &mut Option<Bucket>,
    rate: f64,
    n: f64,
    burst: Duration,
    now: Instant,
) -> Result<(), Duration> {
    if rate == 0.0 {
        return Ok(());
    }
    slot.get_or_insert_with(|| Bucket::new(rate, burst, now))
        .try_take(n, now)
}

fn take(slot: &mut Option<Bucket>, rate: f64, n: f64, burst: Duration, now: Instant) -> Duration {
    if rate == 0.0 {
        return Duration::ZERO;
    }
    slot.get_or_insert_with(|| Bucket::new(rate, burst, now))
        .take(n, now)
}

#[cfg(test)]
mod tests;
