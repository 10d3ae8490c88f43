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

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSettings(pub String);

impl Settings {
    /// Checks the settings as a whole.
    pub fn validate(&self, max_rate: f64) -> Result<(), InvalidSettings> {
        let bad = |m: String| Err(InvalidSettings(m));
        if !(self.rate_per_second.is_finite() && self.rate_per_second > 0.0) {
            return bad(format!(
                "rate must be more than 0 events/s, got {}",
                self.rate_per_second
            ));
        }
        if self.rate_per_second > max_rate {
            return bad(format!(
                "rate {} events/s is above the maximum of {max_rate} (--supplier-max-rate)",
                self.rate_per_second
            ));
        }
        if self.pages.is_empty() || self.pages.iter().any(String::is_empty) {
            return bad("pages must be a non-empty list of non-empty names".into());
        }
        if self.users.is_empty() || self.users.iter().any(String::is_empty) {
            return bad("users must be a non-empty list of non-empty names".into());
        }
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
                let nanos =
                    i128::from(interval.seconds) * 1_000_000_000 + i128::from(interval.nanos);
                if nanos <= 0 || interval.nanos < 0 {
                    return Err(InvalidSettings("interval must be more than zero".into()));
                }
                next.rate_per_second = 1e9 / nanos as f64;
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

    /// The time between two events.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate_per_second)
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
            let error = seed().updated(update, 100_000.0).expect_err(word);
            assert!(error.0.contains(word), "{word}: {error}");
        }
    }
}
