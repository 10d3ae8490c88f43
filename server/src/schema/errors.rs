//! What a check or a decode reports: [`Violations`] on the write side, [`DecodeError`] on
//! the read side.

use std::fmt;

use super::Format;
use super::limits::MAX_LISTED_VIOLATIONS;

/// One way a value does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where: a JSON pointer into the value (`/amount`, `/items/0/sku`, `""` for the whole
    /// value) for JSON input, or a Protobuf field path (`shop.v1.Order.items`) for a binary
    /// value, empty when the decoder cannot tell.
    pub path: String,
    /// What is wrong, quoting user data at most 64 characters at a time.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a value was refused: the first few violations (at most 3), and how many more there
/// were.
///
/// Displays as `value does not match the schema of topic X (format): <violations>`. X is the
/// name or glob the schema was declared for until [`Violations::in_topic`] names the topic
/// the value was meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    topic: String,
    format: Format,
    listed: Vec<Violation>,
    more: usize,
}

impl Violations {
    /// Violations of the schema declared for `pattern`. `all` must hold at least one
    /// violation; past [`MAX_LISTED_VIOLATIONS`] they are only counted.
    pub(super) fn new(pattern: &str, format: Format, mut all: Vec<Violation>, more: usize) -> Self {
        let extra = all.len().saturating_sub(MAX_LISTED_VIOLATIONS);
        all.truncate(MAX_LISTED_VIOLATIONS);
        Self {
            topic: pattern.to_owned(),
            format,
            listed: all,
            more: more + extra,
        }
    }

    /// A single violation.
    pub(super) fn one(pattern: &str, format: Format, path: String, message: String) -> Self {
        Self::new(pattern, format, vec![Violation { path, message }], 0)
    }

    /// Names the topic the value was meant for in the message (instead of the glob).
    #[must_use]
    pub fn in_topic(mut self, topic: &str) -> Self {
        topic.clone_into(&mut self.topic);
        self
    }

    /// The violations listed (at most 3, in the order the checker found them).
    pub fn violations(&self) -> &[Violation] {
        &self.listed
    }

    /// How many violations there were beyond those listed (counting stops at 10,000).
    pub fn more(&self) -> usize {
        self.more
    }

    /// The schema's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The topic (or glob) named in the message.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "value does not match the schema of topic {} ({}): ",
            self.topic, self.format
        )?;
        for (i, violation) in self.listed.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        if self.more > 0 {
            write!(
                f,
                "; and {} more violation{}",
                self.more,
                if self.more == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Why a value could not be decoded on the read side; the caller delivers it raw with this
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The value is longer than [`super::DecodeLimits::max_bytes`]: not decoded at all.
    #[error("value is {size} bytes, more than the {limit} bytes decoded")]
    TooLarge {
        /// The value's length.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Its JSON would be larger than [`super::DecodeLimits::max_json_bytes`].
    #[error("value's JSON is larger than the {limit} bytes allowed")]
    JsonTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// Not a well-formed encoding of the topic's Protobuf message.
    #[error("not a valid {message}: {reason}")]
    Protobuf {
        /// The message's full name.
        message: String,
        /// What the decoder said.
        reason: String,
    },
    /// Not JSON (or not UTF-8), for a JSON Schema topic.
    #[error("not JSON: {reason}")]
    Json {
        /// What the parser said, with its line and column.
        reason: String,
    },
    /// Decoded, but has no JSON form: a well-known type out of its range (a Timestamp
    /// after year 9999, a Duration over 10,000 years), for instance.
    #[error("has no JSON form: {reason}")]
    NoJsonForm {
        /// What the serializer said.
        reason: String,
    },
}
