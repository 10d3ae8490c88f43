//! What each call needs, with the rules no permission but `admin` overrides: the Kafka
//! internal topics, the server's own consumer groups, writes to the stats topic, and
//! resets of a group's offsets.

use std::sync::Arc;

use super::permission::Need;
use super::principal::{Credential, Principal};
use super::refusals::RefusalLog;

/// What only admins may touch.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// The topic of windowed counts (R4): a forged record there is a forged count.
    pub stats_topic: String,
    /// The analytics and transform groups: a member there takes partitions from the stages.
    pub server_groups: Vec<String>,
    /// The topics the server creates and its stages use: managing them (delete, configs) is
    /// reserved to admin.
    pub server_topics: Vec<String>,
}

/// A call refused because its principal lacks a permission. The gateway answers it as
/// PERMISSION_DENIED, `/metrics` as 403; the message names what would allow the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing permission {permission} (principal {principal:?}){}", why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
pub struct Denied {
    /// The permission string that would allow the call, e.g. `publish:R1`.
    pub permission: String,
    /// Who asked.
    pub principal: String,
    /// Why only that permission will do, for the reserved cases.
    pub why: Option<String>,
}

/// The authorization checks the handlers call.
#[derive(Debug, Default)]
pub struct Access {
    reserved: Reserved,
    refusals: Arc<RefusalLog>,
}

/// The internal topics of Kafka (`__consumer_offsets`, `__transaction_state`, …).
fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

impl Access {
    /// Checks over `reserved`.
    pub fn new(reserved: Reserved) -> Self {
        Self {
            reserved,
            refusals: Arc::default(),
        }
    }

    /// The log throttle, shared with the authentication layer.
    pub fn refusals(&self) -> Arc<RefusalLog> {
        self.refusals.clone()
    }

    /// Publish or PublishStream to `topic`.
    pub fn publish(&self, who: &Principal, method: &str, topic: &str) -> Result<(), Denied> {
        if is_internal(topic) {
            self.admin(
                who,
                method,
                topic,
                "Kafka's internal topics (__*) are reserved to admin",
            )
        } else if topic == self.reserved.stats_topic {
            self.admin(
                who,
                method,
                topic,
                "writing to the stats topic is reserved to admin",
            )
        } else {
            self.require(who, method, topic, Need::Publish(topic), None)
        }
    }

    /// Subscribe to `topics`, with `group` if given; `resets` when the start position
    /// moves the group's committed offsets.
    pub fn subscribe<'a>(
        &self,
        who: &Principal,
        topics: impl IntoIterator<Item = &'a str>,
        group: Option<&str>,
        resets: bool,
    ) -> Result<(), Denied> {
        self.read(who, "Subscribe", topics, group, resets)
    }

    /// Consume `topics` in `group` (the same permissions as Subscribe with a group; the
    /// group's dead-letter topic comes with the group).
    pub fn consume<'a>(
        &self,
        who: &Principal,
        topics: impl IntoIterator<Item = &'a str>,
        group: &str,
        resets: bool,
    ) -> Result<(), Denied> {
        self.read(who, "Consume", topics, Some(group), resets)
    }

    fn read<'a>(
        &self,
        who: &Principal,
        method: &'static str,
        topics: impl IntoIterator<Item = &'a str>,
        group: Option<&str>,
        resets: bool,
    ) -> Result<(), Denied> {
        for topic in topics {
            if is_internal(topic) {
                self.admin(
                    who,
                    method,
                    topic,
                    "Kafka's internal topics (__*) are reserved to admin",
                )?;
            } else {
                self.require(who, method, topic, Need::Subscribe(topic), None)?;
            }
        }
        let Some(group) = group else {
            return Ok(());
        };
        if self.reserved.server_groups.iter().any(|g| g == group) {
            return self.admin(
                who,
                method,
                group,
                "the server's own consumer groups are reserved to admin",
            );
        }
        self.require(who, method, group, Need::Group(group), None)?;
        if resets {
            self.admin(
                who,
                method,
                group,
                "resetting a group's offsets is reserved to admin",
            )?;
        }
        Ok(())
    }

    /// ControlSupplier; `new_topic` when the call re-points it, which also needs the right
    /// to publish there.
    pub fn supplier(&self, who: &Principal, new_topic: Option<&str>) -> Result<(), Denied> {
        const METHOD: &str = "ControlSupplier";
        self.require(who, METHOD, "-", Need::Supplier, None)?;
        match new_topic {
            Some(topic) => self.publish(who, METHOD, topic),
            None => Ok(()),
        }
    }

    /// A PublishStream, before its first record: the caller must hold some `publish:`
    /// grant (each record's topic is checked when it comes).
    pub fn publish_anywhere(&self, who: &Principal) -> Result<(), Denied> {
        if who.may_publish_somewhere() {
            return Ok(());
        }
        self.require(
            who,
            "PublishStream",
            "-",
            Need::Publish("<any topic>"),
            None,
        )
    }

    /// Creating the dead-letter topic `topic` of a Consume stream: the caller must be
    /// allowed to publish to it (`publish:dlq.*`, say), so a principal with a group alone
    /// cannot make the server create topics.
    pub fn create_dead_letters(&self, who: &Principal, topic: &str) -> Result<(), Denied> {
        self.require(
            who,
            "Consume",
            topic,
            Need::Publish(topic),
            Some("the server creates a missing dead-letter topic only for a caller that may publish to it; or create it first"),
        )
    }

    /// WatchPageStats.
    pub fn stats(&self, who: &Principal) -> Result<(), Denied> {
        self.require(who, "WatchPageStats", "-", Need::Stats, None)
    }

    /// A scrape of `/metrics`.
    pub fn metrics(&self, who: &Principal) -> Result<(), Denied> {
        self.require(who, "/metrics", "-", Need::Metrics, None)
    }

    /// ListTopics; the internal topics are listed to admins only.
    pub fn topics(&self, who: &Principal, include_internal: bool) -> Result<(), Denied> {
        const METHOD: &str = "ListTopics";
        self.require(who, METHOD, "-", Need::Topics, None)?;
        if include_internal {
            self.admin(
                who,
                METHOD,
                "-",
                "listing Kafka's internal topics is reserved to admin",
            )?;
        }
        Ok(())
    }

    /// DescribeTopic: `topics`, and admin for Kafka's internal topics.
    pub fn describe_topic(&self, who: &Principal, topic: &str) -> Result<(), Denied> {
        const METHOD: &str = "DescribeTopic";
        self.require(who, METHOD, topic, Need::Topics, None)?;
        if is_internal(topic) {
            self.admin(
                who,
                METHOD,
                topic,
                "describing Kafka's internal topics is reserved to admin",
            )?;
        }
        Ok(())
    }

    /// CreateTopic, DeleteTopic, AlterTopicConfigs on `topic`.
    pub fn manage_topic(&self, who: &Principal, method: &str, topic: &str) -> Result<(), Denied> {
        if is_internal(topic) {
            self.admin(
                who,
                method,
                topic,
                "Kafka's internal topics (__*) are reserved to admin",
            )
        } else if self.reserved.server_topics.iter().any(|t| t == topic) {
            self.admin(
                who,
                method,
                topic,
                "managing the server's own topics is reserved to admin",
            )
        } else {
            self.require(who, method, topic, Need::ManageTopic(topic), None)
        }
    }

    /// DescribeGroup: `group:<group>` (a member may see its group) or `groups:manage:<group>`.
    pub fn describe_group(&self, who: &Principal, group: &str) -> Result<(), Denied> {
        if self.may_see_group(who, group) {
            return Ok(());
        }
        if self.is_server_group(group) {
            return self.admin(
                who,
                "DescribeGroup",
                group,
                "the server's own consumer groups are reserved to admin",
            );
        }
        self.require(who, "DescribeGroup", group, Need::Group(group), None)
    }

    /// Whether ListGroups shows `group` to `who` (what DescribeGroup would allow).
    pub fn may_see_group(&self, who: &Principal, group: &str) -> bool {
        if self.is_server_group(group) {
            return who.allows(&Need::Admin);
        }
        who.allows(&Need::Group(group)) || who.allows(&Need::ManageGroup(group))
    }

    /// ResetGroupOffsets and DeleteGroup on `group`.
    pub fn manage_group(&self, who: &Principal, method: &str, group: &str) -> Result<(), Denied> {
        if self.is_server_group(group) {
            return self.admin(
                who,
                method,
                group,
                "the server's own consumer groups are reserved to admin",
            );
        }
        self.require(who, method, group, Need::ManageGroup(group), None)
    }

    /// The server's own consumer groups.
    pub fn server_groups(&self) -> &[String] {
        &self.reserved.server_groups
    }

    fn is_server_group(&self, group: &str) -> bool {
        self.reserved.server_groups.iter().any(|g| g == group)
    }

    fn admin(
        &self,
        who: &Principal,
        method: &str,
        resource: &str,
        why: &str,
    ) -> Result<(), Denied> {
        self.require(who, method, resource, Need::Admin, Some(why))
    }

    fn require(
        &self,
        who: &Principal,
        method: &str,
        resource: &str,
        need: Need<'_>,
        why: Option<&str>,
    ) -> Result<(), Denied> {
        if who.allows(&need) {
            return Ok(());
        }
        let permission = need.to_string();
        if who.credential() != Credential::Open {
            // Names come from the client: cut them to a log-sized piece.
            let resource: String = resource.chars().take(200).collect();
            self.refusals.record(|refusals| {
                tracing::warn!(
                    refusals,
                    principal = who.name(),
                    method,
                    resource,
                    missing = ?permission,
                    "refused a call: permission missing"
                );
            });
        }
        Err(Denied {
            permission,
            principal: who.name().to_owned(),
            why: why.map(str::to_owned),
        })
    }
}
