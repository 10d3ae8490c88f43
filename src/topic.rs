//! Kafka's topic-name rules, checked at the edge so that a bad name is a clear
//! `INVALID_ARGUMENT` instead of a broker error (or a silently auto-created topic).

use std::fmt;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// The rule every topic name must follow, as said to users in error messages.
pub const TOPIC_NAME_RULE: &str =
    "a topic name is 1 to 249 characters of [a-zA-Z0-9._-] and is not \".\" or \"..\"";

/// Why a topic name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTopicName {
    /// The name is empty.
    #[error("topic name is empty: {TOPIC_NAME_RULE}")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_NAME_LEN`].
    #[error("topic name is {0} characters long: {TOPIC_NAME_RULE}")]
    TooLong(usize),
    /// The name is `.` or `..`.
    #[error("topic name {0:?} is reserved: {TOPIC_NAME_RULE}")]
    Reserved(String),
    /// The name holds a character outside `[a-zA-Z0-9._-]`.
    #[error("topic name {name:?} contains {bad:?}: {TOPIC_NAME_RULE}")]
    BadCharacter {
        /// The name as given (truncated to a readable length).
        name: String,
        /// The first offending character.
        bad: char,
    },
}

/// A topic name that follows Kafka's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    /// Checks `name` against Kafka's rules.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidTopicName> {
        let name = name.into();
        validate(&name)?;
        Ok(Self(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks `name` against Kafka's topic-name rules without taking ownership.
pub fn validate(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() {
        return Err(InvalidTopicName::Empty);
    }
    let len = name.chars().count();
    if len > MAX_TOPIC_NAME_LEN {
        return Err(InvalidTopicName::TooLong(len));
    }
    if name == "." || name == ".." {
        return Err(InvalidTopicName::Reserved(name.to_owned()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidTopicName::BadCharacter {
            name: name.chars().take(64).collect(),
            bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_names() {
        for name in ["R1", "a", "page.events_v2-x", "...", &"x".repeat(249)] {
            assert!(TopicName::new(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(validate(""), Err(InvalidTopicName::Empty));
        assert_eq!(
            validate(&"x".repeat(250)),
            Err(InvalidTopicName::TooLong(250))
        );
        assert_eq!(validate("."), Err(InvalidTopicName::Reserved(".".into())));
        assert_eq!(validate(".."), Err(InvalidTopicName::Reserved("..".into())));
        assert!(matches!(
            validate("bad topic"),
            Err(InvalidTopicName::BadCharacter { bad: ' ', .. })
        ));
        assert!(matches!(
            validate("pagé"),
            Err(InvalidTopicName::BadCharacter { bad: 'é', .. })
        ));
        assert!(matches!(
            validate("a/b"),
            Err(InvalidTopicName::BadCharacter { bad: '/', .. })
        ));
    }

    #[test]
    fn error_names_the_rule() {
        let message = validate("no way").expect_err("invalid").to_string();
        assert!(message.contains("[a-zA-Z0-9._-]"), "{message}");
    }
}
