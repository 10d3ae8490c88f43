//! The supplier's settings and the validation of a ControlSupplier update: an update is
//! applied to a copy, checked as a whole, and only then swapped in — an invalid request
//! changes nothing.

use std::time::Duration;

use streamgate::proto;
use streamgate::topic::TopicName;

/// What the supplier generates, and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Events per second.
    pub rate_per_second: f64,
    /// Page names, picked uniformly.
    pub pages: Vec<String>,
    /// User names, picked uniformly.
    pub users: Vec<String>,
    /// Smallest duration, milliseconds.
    pub min_duration_ms: i64,
    /// Largest duration, milliseconds, inclusive.
    pub max_duration_ms: i64,
    /// Where events go.
    pub topic: TopicName,
}

/// The slowest rate: one event per hour. Anything slower is a stopped supplier.
pub const MIN_RATE: f64 = 1.0 / 3600.0;
/// Most page or user names in one list.
pub const MAX_NAMES: usize = 1000;
/// Longest page or user name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSettings(pub String);

impl Settings {
    /// Checks the settings as a whole.
    pub fn validate(&self, max_rate: f64) -> Result<(), InvalidSettings> {
        let bad = |m: String| Err(InvalidSettings(m));
        let rate = self.rate_per_second;
        // Written so that NaN fails it too.
        if !(rate >= MIN_RATE && rate <= max_rate) {
            return bad(format!(
                "rate must be between one event per hour ({MIN_RATE:.6} events/s) and the \
                 maximum of {max_rate} events/s (--supplier-max-rate), got {rate:?}"
            ));
        }
        names("pages", &self.pages)?;
        names("users", &self.users)?;
        if self.min_duration_ms < 0 {
            return bad(format!(
                "minimum duration must be 0 ms or more, got {}",
                self.min_duration_ms
            ));
        }
        if self.min_duration_ms > self.max_duration_ms {
            return bad(format!(
                "minimum duration {} ms is above the maximum {} ms",
                self.min_duration_ms, self.max_duration_ms
            ));
        }
        Ok(())
    }

    /// These settings with `update` applied; validated.
    pub fn updated(
        &self,
        update: proto::SupplierSettingsUpdate,
        max_rate: f64,
    ) -> Result<Self, InvalidSettings> {
        let mut next = self.clone();
        match (update.interval, update.rate_per_second) {
            (Some(_), Some(_)) => {
                return Err(InvalidSettings(
                    "give either interval or rate_per_second, not both".into(),
                ));
            }
            (Some(interval), None) => {
                let interval = streamgate::time::duration_to_std(&interval)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        InvalidSettings("interval must be a duration more than zero".into())
                    })?;
                next.rate_per_second = 1.0 / interval.as_secs_f64();
            }
            (None, Some(rate)) => next.rate_per_second = rate,
            (None, None) => {}
        }
        if let Some(pages) = update.pages {
            next.pages = pages.values;
        }
        if let Some(users) = update.users {
            next.users = users.values;
        }
        if let Some(min) = update.min_duration_ms {
            next.min_duration_ms = min;
        }
        if let Some(max) = update.max_duration_ms {
            next.max_duration_ms = max;
        }
        if let Some(topic) = update.topic {
            next.topic = TopicName::new(topic).map_err(|e| InvalidSettings(e.to_string()))?;
        }
        next.validate(max_rate)?;
        Ok(next)
    }

    /// The time between two events; at most an hour, whatever the rate (validated settings
    /// never have a slower one).
    pub fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.rate_per_second.max(MIN_RATE))
            .unwrap_or(Duration::from_secs(3600))
    }

    /// The API form.
    pub fn to_proto(&self) -> proto::SupplierSettings {
        proto::SupplierSettings {
            rate_per_second: self.rate_per_second,
            pages: self.pages.clone(),
            users: self.users.clone(),
            min_duration_ms: self.min_duration_ms,
            max_duration_ms: self.max_duration_ms,
            topic: self.topic.to_string(),
        }
    }
}

/// Checks a list of page or user names.
fn names(what: &str, values: &[String]) -> Result<(), InvalidSettings> {
    if values.is_empty() || values.len() > MAX_NAMES {
        return Err(InvalidSettings(format!(
            "{what} must be a list of 1 to {MAX_NAMES} names, got {}",
            values.len()
        )));
    }
    if let Some(bad) = values
        .iter()
        .find(|v| v.is_empty() || v.len() > MAX_NAME_BYTES || v.chars().any(char::is_control))
    {
        return Err(InvalidSettings(format!(
            "{what} must be names of 1 to {MAX_NAME_BYTES} bytes without control characters, \
             got one of {} bytes",
            bad.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Settings {
        Settings {
            rate_per_second: 1.0,
            pages: vec!["P1".into(), "P2".into()],
            users: vec!["U1".into(), "U2".into()],
            min_duration_ms: 0,
            max_duration_ms: 9000,
            topic: TopicName::new("R2").expect("valid"),
        }
    }

    fn list(values: &[&str]) -> Option<proto::StringList> {
        Some(proto::StringList {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        })
    }

    #[test]
    fn applies_every_field() {
        let update = proto::SupplierSettingsUpdate {
            interval: Some(prost_types::Duration {
                seconds: 0,
                nanos: 100_000_000,
            }),
            pages: list(&["P3", "P4"]),
            users: list(&["U9"]),
            min_duration_ms: Some(10),
            max_duration_ms: Some(20),
            topic: Some("other".into()),
            ..Default::default()
        };
        let next = seed().updated(update, 100_000.0).expect("valid");
        assert!((next.rate_per_second - 10.0).abs() < 1e-9);
        assert_eq!(next.pages, vec!["P3", "P4"]);
        assert_eq!(next.users, vec!["U9"]);
        assert_eq!((next.min_duration_ms, next.max_duration_ms), (10, 20));
        assert_eq!(next.topic.as_str(), "other");
    }

    #[test]
    fn refuses_each_invalid_update_by_name() {
        let cases: Vec<(proto::SupplierSettingsUpdate, &str)> = vec![
            (
                proto::SupplierSettingsUpdate {
                    pages: list(&[]),
                    ..Default::default()
                },
                "pages",
            ),
            (
                proto::SupplierSettingsUpdate {
                    users: list(&[""]),
                    ..Default::default()
                },
                "users",
            ),
            (
                proto::SupplierSettingsUpdate {
                    rate_per_second: Some(0.0),
                    ..Default::default()
                },
                "rate",
            ),
            (
                proto::SupplierSettingsUpdate {
                    rate_per_second: Some(1e9),
                    ..Default::default()
                },
                "maximum",
            ),
            (
                proto::SupplierSettingsUpdate {
                    rate_per_second: Some(f64::NAN),
                    ..Default::default()
                },
                "rate",
            ),
            (
                proto::SupplierSettingsUpdate {
                    min_duration_ms: Some(9001),
                    ..Default::default()
                },
                "minimum duration",
            ),
            (
                proto::SupplierSettingsUpdate {
                    min_duration_ms: Some(-1),
                    ..Default::default()
                },
                "0 ms",
            ),
            (
                proto::SupplierSettingsUpdate {
                    topic: Some("bad topic".into()),
                    ..Default::default()
                },
                "topic",
            ),
            (
                proto::SupplierSettingsUpdate {
                    interval: Some(prost_types::Duration {
                        seconds: 0,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                "interval",
            ),
            (
                proto::SupplierSettingsUpdate {
                    interval: Some(prost_types::Duration {
                        seconds: 1,
                        nanos: 0,
                    }),
                    rate_per_second: Some(2.0),
                    ..Default::default()
                },
                "not both",
            ),
        ];
        for (update, word) in cases {
            let error = seed().updated(update.clone(), 100_000.0).expect_err(word);
            assert!(error.0.contains(word), "{word}: {update:?}: {error}");
        }
    }

    #[test]
    fn refuses_out_of_range_rates_intervals_and_names() {
        let rate = |r: f64| proto::SupplierSettingsUpdate {
            rate_per_second: Some(r),
            ..Default::default()
        };
        let interval = |seconds: i64, nanos: i32| proto::SupplierSettingsUpdate {
            interval: Some(prost_types::Duration { seconds, nanos }),
            ..Default::default()
        };
        let mut cases = Vec::new();
        for r in [
            1e-300,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ] {
            cases.push((rate(r), "one event per hour"));
        }
        for (seconds, nanos) in [
            (-1, 0),
            (0, -1),
            (1, -1),
            (i64::MAX, 999_999_999),
            (7200, 0),
        ] {
            let word = if seconds >= 0 && nanos >= 0 {
                "one event per hour"
            } else {
                "interval"
            };
            cases.push((interval(seconds, nanos), word));
        }
        cases.push((
            proto::SupplierSettingsUpdate {
                pages: list(&["x"; MAX_NAMES + 1]),
                ..Default::default()
            },
            "1 to 1000 names",
        ));
        let long = "p".repeat(MAX_NAME_BYTES + 1);
        cases.push((
            proto::SupplierSettingsUpdate {
                users: list(&[&long]),
                ..Default::default()
            },
            "without control characters",
        ));
        cases.push((
            proto::SupplierSettingsUpdate {
                pages: list(&["a\nb"]),
                ..Default::default()
            },
            "without control characters",
        ));
        for (update, word) in cases {
            let error = seed().updated(update.clone(), 100_000.0).expect_err(word);
            assert!(error.0.contains(word), "{word}: {update:?}: {error}");
        }
    }

    #[test]
    fn the_slowest_and_fastest_rates_are_accepted_and_never_panic() {
        for rate in [MIN_RATE, 1.0, 100_000.0] {
            let mut settings = seed();
            settings.rate_per_second = rate;
            assert!(settings.validate(100_000.0).is_ok(), "{rate}");
            assert!(settings.interval() <= Duration::from_secs(3600));
        }
        let mut broken = seed();
        broken.rate_per_second = f64::NAN;
        assert_eq!(broken.interval(), Duration::from_secs(3600));
        broken.rate_per_second = 0.0;
        assert_eq!(broken.interval(), Duration::from_secs(3600));
    }
}
