//! Topic configs: what a broker says of them, and the check of names and values before a
//! create or alter reaches the broker — so a typo is INVALID_ARGUMENT naming the config on
//! every broker, including those that would accept anything, or answer only "invalid
//! config" without saying which.

use super::AdminError;

/// Most configs one request may set.
pub const MAX_CONFIGS: usize = 64;

/// Longest config value accepted.
const MAX_VALUE_BYTES: usize = 1024;

/// Where a config's value comes from, as DescribeConfigs says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Not said.
    Unknown,
    /// Set for this topic.
    Topic,
    /// Set dynamically for the broker.
    DynamicBroker,
    /// Set dynamically for every broker.
    DynamicDefaultBroker,
    /// The broker's configuration file.
    StaticBroker,
    /// Kafka's default.
    Default,
}

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigInfo {
    /// Its name.
    pub name: String,
    /// Its value, `None` when sensitive.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it is the default.
    pub is_default: bool,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether it is hidden.
    pub sensitive: bool,
}

impl From<&rdkafka::admin::ConfigEntry> for ConfigInfo {
    fn from(entry: &rdkafka::admin::ConfigEntry) -> Self {
        use rdkafka::admin::ConfigSource as S;
        Self {
            name: entry.name.clone(),
            value: entry.value.clone().filter(|_| !entry.is_sensitive),
            source: match entry.source {
                S::Unknown => ConfigSource::Unknown,
                S::DynamicTopic => ConfigSource::Topic,
                S::DynamicBroker => ConfigSource::DynamicBroker,
                S::DynamicDefaultBroker => ConfigSource::DynamicDefaultBroker,
                S::StaticBroker => ConfigSource::StaticBroker,
                S::Default => ConfigSource::Default,
            },
            is_default: entry.is_default,
            read_only: entry.is_read_only,
            sensitive: entry.is_sensitive,
        }
    }
}

/// The kind of value a topic config takes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Long,
    Int,
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    Text,
}

/// Kafka's topic configs (4.x) and their kinds.
const TOPIC_CONFIGS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::ListOf(&["delete", "compact"])),
    ("compression.gzip.level", Kind::Int),
    ("compression.lz4.level", Kind::Int),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    ("compression.zstd.level", Kind::Int),
    ("delete.retention.ms", Kind::Long),
    ("file.delete.delay.ms", Kind::Long),
    ("flush.messages", Kind::Long),
    ("flush.ms", Kind::Long),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long),
    ("local.retention.ms", Kind::Long),
    ("max.compaction.lag.ms", Kind::Long),
    ("max.message.bytes", Kind::Int),
    ("message.downconversion.enable", Kind::Bool),
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long),
    ("message.timestamp.before.max.ms", Kind::Long),
    ("message.timestamp.difference.max.ms", Kind::Long),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", Kind::Long),
    ("min.insync.replicas", Kind::Int),
    ("preallocate", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long),
    ("retention.ms", Kind::Long),
    ("segment.bytes", Kind::Int),
    ("segment.index.bytes", Kind::Int),
    ("segment.jitter.ms", Kind::Long),
    ("segment.ms", Kind::Long),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Checks a config's name, and its value when given (`None`: a delete).
pub fn check(name: &str, value: Option<&str>) -> Result<(), AdminError> {
    let invalid = |why: String| Err(AdminError::Invalid(format!("config {name:?}: {why}")));
    let Some((_, kind)) = TOPIC_CONFIGS.iter().find(|(known, _)| *known == name) else {
        let shown: String = name.chars().take(100).collect();
        return Err(AdminError::Invalid(format!(
            "{shown:?} is not a Kafka topic config (e.g. retention.ms, cleanup.policy, max.message.bytes)"
        )));
    };
    let Some(value) = value else {
        return Ok(());
    };
    if value.len() > MAX_VALUE_BYTES {
        return invalid(format!("the value is over {MAX_VALUE_BYTES} bytes"));
    }
    let fits = match kind {
        Kind::Long => value.parse::<i64>().is_ok(),
        Kind::Int => value.parse::<i32>().is_ok(),
        Kind::Bool => matches!(value, "true" | "false"),
        Kind::Ratio => value.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r)),
        Kind::OneOf(allowed) => allowed.contains(&value),
        Kind::ListOf(allowed) => value.split(',').all(|item| allowed.contains(&item.trim())),
        Kind::Text => !value.chars().any(char::is_control),
    };
    if fits {
        return Ok(());
    }
    let want = match kind {
        Kind::Long => "a 64-bit integer".to_owned(),
        Kind::Int => "a 32-bit integer".to_owned(),
        Kind::Bool => "true or false".to_owned(),
        Kind::Ratio => "a number from 0 to 1".to_owned(),
        Kind::OneOf(allowed) => format!("one of {}", allowed.join(", ")),
        Kind::ListOf(allowed) => format!("a comma-separated list of {}", allowed.join(", ")),
        Kind::Text => "text without control characters".to_owned(),
    };
    let shown: String = value.chars().take(100).collect();
    invalid(format!("{shown:?} is not {want}"))
}

/// Checks every config of a create or alter.
pub fn check_all<'a>(
    configs: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), AdminError> {
    if configs.len() > MAX_CONFIGS {
        return Err(AdminError::Invalid(format!(
            "{} configs in one request, over the limit of {MAX_CONFIGS}",
            configs.len()
        )));
    }
    for (name, value) in configs {
        check(name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str, value: Option<&str>) -> String {
        match check(name, value) {
            Err(AdminError::Invalid(m)) => m,
            other => panic!("{name}={value:?}: {other:?}"),
        }
    }

    #[test]
    fn known_configs_with_fitting_values_pass() {
        for (name, value) in [
            ("retention.ms", "-1"),
            ("retention.ms", "604800000"),
            ("cleanup.policy", "compact,delete"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("message.timestamp.type", "LogAppendTime"),
            ("preallocate", "false"),
        ] {
            check(name, Some(value)).unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        }
        check("retention.ms", None).expect("a delete needs no value");
    }

    #[test]
    fn a_bad_name_or_value_is_named() {
        assert!(
            message("retention.mss", Some("1"))
                .contains("\"retention.mss\" is not a Kafka topic config")
        );
        assert!(
            message("retention.ms", Some("a week"))
                .contains("config \"retention.ms\": \"a week\" is not a 64-bit integer")
        );
        assert!(message("cleanup.policy", Some("compact,forever")).contains("delete, compact"));
        assert!(message("min.cleanable.dirty.ratio", Some("2")).contains("from 0 to 1"));
        assert!(message("segment.bytes", Some("99999999999")).contains("32-bit"));
        let huge = "9".repeat(2000);
        assert!(message("retention.ms", Some(&huge)).contains("over 1024 bytes"));
    }

    #[test]
    fn too_many_configs_are_refused_before_any_is_looked_at() {
        let many: Vec<(&str, Option<&str>)> = vec![("nonsense", None); MAX_CONFIGS + 1];
        match check_all(many.into_iter()) {
            Err(AdminError::Invalid(m)) => assert!(m.contains("over the limit of 64"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
