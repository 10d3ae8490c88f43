//! Permission strings (`publish:R*`, `stats`, …) as the auth file and JWT scopes spell
//! them, the glob they carry, and [`Need`], what one call needs.

use std::fmt;

/// Longest permission string accepted; a glob is a topic or group name with `*` in it.
const MAX_PERMISSION_LEN: usize = 512;

/// One granted permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// `publish:<glob>`: Publish and PublishStream to matching topics.
    Publish(Glob),
    /// `subscribe:<glob>`: Subscribe to matching topics.
    Subscribe(Glob),
    /// `group:<glob>`: use a matching consumer group (on top of `subscribe`).
    Group(Glob),
    /// `supplier`: ControlSupplier.
    Supplier,
    /// `stats`: WatchPageStats.
    Stats,
    /// `topics`: ListTopics and DescribeTopic.
    Topics,
    /// `topics:manage:<glob>`: create, delete and change the configs of matching topics.
    ManageTopics(Glob),
    /// `groups:manage:<glob>`: reset the offsets of and delete matching consumer groups
    /// (describing them too).
    ManageGroups(Glob),
    /// `metrics`: the Prometheus endpoint.
    Metrics,
    /// `admin`: everything, including what is reserved to it.
    Admin,
}

/// Why a permission string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{permission:?}: {reason}")]
pub struct BadPermission {
    /// The string as given.
    pub permission: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::str::FromStr for Permission {
    type Err = BadPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| BadPermission {
            permission: s.chars().take(80).collect(),
            reason,
        };
        if s.len() > MAX_PERMISSION_LEN {
            return Err(bad("longer than 512 bytes"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or a control character"));
        }
        let simple = match s {
            "supplier" => Some(Self::Supplier),
            "stats" => Some(Self::Stats),
            "topics" => Some(Self::Topics),
            "metrics" => Some(Self::Metrics),
            "admin" => Some(Self::Admin),
            _ => None,
        };
        if let Some(permission) = simple {
            return Ok(permission);
        }
        let (kind, pattern) = s.split_once(':').ok_or_else(|| {
            bad("not one of publish:<glob>, subscribe:<glob>, group:<glob>, topics:manage:<glob>, groups:manage:<glob>, supplier, stats, topics, metrics, admin")
        })?;
        let (kind, pattern) = match (kind, pattern.strip_prefix("manage:")) {
            ("topics", Some(glob)) => ("topics:manage", glob),
            ("groups", Some(glob)) => ("groups:manage", glob),
            ("topics" | "groups", None) => {
                return Err(bad(
                    "topics and groups take `:manage:<glob>` (or plain `topics`)",
                ));
            }
            _ => (kind, pattern),
        };
        if pattern.is_empty() {
            return Err(bad("the glob after ':' is empty (use * for all)"));
        }
        let glob = Glob::new(pattern);
        match kind {
            "publish" => Ok(Self::Publish(glob)),
            "subscribe" => Ok(Self::Subscribe(glob)),
            "group" => Ok(Self::Group(glob)),
            "topics:manage" => Ok(Self::ManageTopics(glob)),
            "groups:manage" => Ok(Self::ManageGroups(glob)),
            _ => Err(bad(
                "unknown kind before ':' (publish, subscribe, group, topics:manage or groups:manage)",
            )),
        }
    }
}

impl Permission {
    /// Whether this grant covers `need`. `admin` covers everything.
    pub fn covers(&self, need: &Need<'_>) -> bool {
        match (self, need) {
            (Self::Admin, _) => true,
            (Self::Publish(glob), Need::Publish(topic))
            | (Self::Subscribe(glob), Need::Subscribe(topic))
            | (Self::Group(glob), Need::Group(topic))
            | (Self::ManageTopics(glob), Need::ManageTopic(topic))
            | (Self::ManageGroups(glob), Need::ManageGroup(topic)) => glob.matches(topic),
            (Self::Supplier, Need::Supplier)
            | (Self::Stats, Need::Stats)
            | (Self::Topics, Need::Topics)
            | (Self::Metrics, Need::Metrics) => true,
            _ => false,
        }
    }
}

/// A name pattern where `*` stands for any run of characters (including none); every other
/// character matches itself. There is no `?` or character class: Kafka names are plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// The pattern `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        // `split` always yields at least one part.
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else {
            return rest.is_empty(); // no `*` at all: an exact name
        };
        // Each middle part at its first occurrence: the earliest match leaves the most room
        // for the rest, so greedy-leftmost is exact for `*`-only patterns.
        for part in parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

/// What one call needs, named like the permission that grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Write to this topic.
    Publish(&'a str),
    /// Read this topic.
    Subscribe(&'a str),
    /// Use this consumer group.
    Group(&'a str),
    /// Create, delete or change this topic.
    ManageTopic(&'a str),
    /// Reset or delete this consumer group.
    ManageGroup(&'a str),
    /// Control the supplier.
    Supplier,
    /// Watch page stats.
    Stats,
    /// List topics.
    Topics,
    /// Scrape metrics.
    Metrics,
    /// Something reserved to admins.
    Admin,
}

impl fmt::Display for Need<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Publish(topic) => write!(f, "publish:{topic}"),
            Need::Subscribe(topic) => write!(f, "subscribe:{topic}"),
            Need::Group(group) => write!(f, "group:{group}"),
            Need::ManageTopic(topic) => write!(f, "topics:manage:{topic}"),
            Need::ManageGroup(group) => write!(f, "groups:manage:{group}"),
            Need::Supplier => f.write_str("supplier"),
            Need::Stats => f.write_str("stats"),
            Need::Topics => f.write_str("topics"),
            Need::Metrics => f.write_str("metrics"),
            Need::Admin => f.write_str("admin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn glob(p: &str) -> Glob {
        Glob(p.to_owned())
    }

    #[test]
    fn globs_match_whole_names() {
        for (pattern, name, expected) in [
            ("R*", "R1", true),
            ("R*", "R", true),
            ("R*", "xR1", false),
            ("*", "", true),
            ("R1", "R1", true),
            ("R1", "R10", false),
            ("team-*-in", "team-a-in", true),
            ("team-*-in", "team-a-in-x", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "acb", false),
            ("*.dlq", "orders.dlq", true),
            ("**", "anything", true),
            ("a*a", "a", false),
        ] {
            assert_eq!(glob(pattern).matches(name), expected, "{pattern} ~ {name}");
        }
    }

    /// The glob agrees with a regex built from it, on names over a small alphabet (where
    /// overlaps, the hard case, are frequent).
    fn reference(pattern: &str, name: &str) -> bool {
        fn go(p: &[u8], n: &[u8]) -> bool {
            match p.split_first() {
                None => n.is_empty(),
                Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
                Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
            }
        }
        go(pattern.as_bytes(), name.as_bytes())
    }

    proptest! {
        #[test]
        fn glob_agrees_with_backtracking(pattern in "[ab*]{0,8}", name in "[ab]{0,10}") {
            prop_assert_eq!(glob(&pattern).matches(&name), reference(&pattern, &name));
        }
    }

    #[test]
    fn permission_strings_parse_or_say_why() {
        assert_eq!("publish:R*".parse(), Ok(Permission::Publish(glob("R*"))));
        assert_eq!("admin".parse(), Ok(Permission::Admin));
        assert_eq!(
            "topics:manage:orders-*".parse(),
            Ok(Permission::ManageTopics(glob("orders-*")))
        );
        assert_eq!(
            "groups:manage:*".parse(),
            Ok(Permission::ManageGroups(glob("*")))
        );
        for bad in [
            "",
            "publish:",
            "topics:orders",
            "topics:manage:",
            "groups:*",
            "read:R1",
            "publish R1",
            "Stats",
            "publish:\nx",
        ] {
            assert!(bad.parse::<Permission>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn admin_covers_everything_and_kinds_do_not_mix() {
        let need = Need::Publish("R4");
        assert!(Permission::Admin.covers(&need));
        assert!(!Permission::Subscribe(glob("*")).covers(&need));
        assert!(!Permission::Stats.covers(&Need::Topics));
        assert!(Permission::Group(glob("team-*")).covers(&Need::Group("team-a")));
        assert_eq!(Need::Group("g").to_string(), "group:g");
        let manage = Permission::ManageTopics(glob("orders*"));
        assert!(manage.covers(&Need::ManageTopic("orders")));
        assert!(!manage.covers(&Need::ManageGroup("orders")));
        assert!(!manage.covers(&Need::Topics));
        assert!(!Permission::Topics.covers(&Need::ManageTopic("orders")));
        assert_eq!(
            Need::ManageGroup("billing").to_string(),
            "groups:manage:billing"
        );
    }
}
