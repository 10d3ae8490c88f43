//! The bounds on untrusted input, and the helpers that keep user data in messages short.
//!
//! A schema file, the schemas it names and every value checked against them come from
//! outside the server; each bound below turns what would be a stall, a memory spike or a
//! megabyte-long error message into a typed error.

use std::io;

/// Largest schema file (the TOML) read: far above any real one (1000 entries of a few
/// lines), small enough that a wrong `--schemas` path (a log, a disk image) fails fast.
pub const MAX_SCHEMA_FILE_BYTES: u64 = 1 << 20;

/// Most `[[topic]]` entries in one schema file.
pub const MAX_ENTRIES: usize = 1000;

/// Largest descriptor set or JSON Schema document one entry may reference. A descriptor
/// set with all of googleapis is a few MiB.
pub const MAX_SCHEMA_BYTES: u64 = 16 << 20;

/// Most bytes read for all the distinct schema documents of one file together, so that
/// 1000 entries naming 1000 large files cannot make a reload read 16 GiB.
pub const MAX_TOTAL_SCHEMA_BYTES: u64 = 256 << 20;

/// Longest topic name or glob, as Kafka's topic names.
pub const MAX_NAME_CHARS: usize = streamgate::topic::MAX_TOPIC_NAME_LEN;

/// Longest definition text [`super::TopicSchema::definition`] returns.
pub const MAX_DEFINITION_BYTES: usize = 64 << 10;

/// Most characters of one piece of user data (a value, a key, a name) quoted in a message.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Most characters of a whole violation message or path.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// Violations listed in a [`super::Violations`]; the rest are only counted.
pub const MAX_LISTED_VIOLATIONS: usize = 3;

/// Violations counted past the listed ones: a 1 MiB array of wrong items can have hundreds
/// of thousands, and counting them all would cost more than the check.
pub const MAX_COUNTED_VIOLATIONS: usize = 10_000;

/// Size regex patterns of a JSON Schema may compile to (the `regex` crate's `size_limit`;
/// its default is 10 MiB), so that one `{1000}{1000}` pattern cannot take gigabytes.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

/// Backtracking steps one match of a pattern with lookaround or backreferences may take
/// (fancy-regex's default is a million): about a millisecond.
pub const MAX_REGEX_BACKTRACKS: usize = 100_000;

/// Lazy DFA cache for each regex of a JSON Schema (the `regex` crate's `dfa_size_limit`).
pub const MAX_REGEX_DFA_BYTES: usize = 1 << 20;

/// How a topic's values are decoded on the read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Values longer than this are not decoded ([`super::DecodeError::TooLarge`]). A
    /// Protobuf value's in-memory form is several times its encoding, so this bounds the
    /// memory one record costs.
    pub max_bytes: usize,
    /// Decoded JSON larger than this is refused ([`super::DecodeError::JsonTooLarge`]): a
    /// packed repeated field of one-byte varints, or of enums with long names, expands many
    /// times in JSON.
    pub max_json_bytes: usize,
}

impl DecodeLimits {
    /// The default [`DecodeLimits::max_bytes`]: 1 MiB, Kafka's default largest record.
    pub const DEFAULT_MAX_BYTES: usize = 1 << 20;
    /// The default [`DecodeLimits::max_json_bytes`]: 4 MiB.
    pub const DEFAULT_MAX_JSON_BYTES: usize = 4 << 20;
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_json_bytes: Self::DEFAULT_MAX_JSON_BYTES,
        }
    }
}

/// An `io::Write` that keeps nothing and fails once more than `limit` bytes were written:
/// measures a JSON serialisation without building it, and stops early when it is too big.
pub(super) struct CountingWriter {
    pub(super) written: usize,
    limit: usize,
}

impl CountingWriter {
    pub(super) fn new(limit: usize) -> Self {
        Self { written: 0, limit }
    }

    /// Whether the writer stopped because the output passed the limit.
    pub(super) fn overflowed(&self) -> bool {
        self.written > self.limit
    }
}

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written = self.written.saturating_add(buf.len());
        if self.overflowed() {
            Err(io::Error::other("output limit reached"))
        } else {
            Ok(buf.len())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An `io::Write` into a `Vec` that fails past `limit` bytes.
struct BoundedVec {
    out: Vec<u8>,
    limit: usize,
}

impl io::Write for BoundedVec {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.out.len());
        let take = buf.len().min(room);
        self.out.extend_from_slice(&buf[..take]);
        if take < buf.len() {
            Err(io::Error::other("output limit reached"))
        } else {
            Ok(take)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The compact JSON of `value`, cut to [`MAX_QUOTED_CHARS`] characters with `…`: how a
/// message shows a value without echoing a megabyte of it.
pub(super) fn json_excerpt(value: &serde_json::Value) -> String {
    // A few bytes more than the characters kept, so a cut inside a multi-byte character or
    // an escape still leaves enough to show.
    let mut out = BoundedVec {
        out: Vec::new(),
        limit: MAX_QUOTED_CHARS * 4 + 4,
    };
    let complete = serde_json::to_writer(&mut out, value).is_ok();
    let text = String::from_utf8_lossy(&out.out);
    let mut chars = text.chars();
    let kept: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if complete && chars.next().is_none() {
        kept
    } else {
        format!("{kept}…")
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// A JSON pointer with each segment (user data: object keys) cut to [`MAX_QUOTED_CHARS`]
/// characters, and the whole to [`MAX_MESSAGE_CHARS`].
pub(super) fn bound_pointer(pointer: &str) -> String {
    let bounded: Vec<String> = pointer
        .split('/')
        .map(|segment| truncate_chars(segment, MAX_QUOTED_CHARS))
        .collect();
    truncate_chars(&bounded.join("/"), MAX_MESSAGE_CHARS)
}

/// `name` for a message: Debug-quoted, at most [`MAX_QUOTED_CHARS`] characters of it.
pub(super) fn quote_name(name: &str) -> String {
    match name.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{name:?}"),
        Some((at, _)) => format!("{:?}…", &name[..at]),
    }
}

/// A message from a parser or validator, which may quote user data in `'…'`, `"…"` or
/// `` `…` ``: each quoted run cut to [`MAX_QUOTED_CHARS`] characters, and the whole to
/// [`MAX_MESSAGE_CHARS`]. serde's "invalid type: string \"…\"" quotes a whole string value,
/// prost-reflect's "unrecognized field name '…'" a whole key.
pub(super) fn bound_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 8));
    let mut quote: Option<char> = None;
    let mut quoted = 0usize;
    let mut elided = false;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                elided = false;
                out.push(c);
            }
            Some(_) => {
                quoted += 1;
                if quoted <= MAX_QUOTED_CHARS {
                    out.push(c);
                } else if !elided {
                    out.push('…');
                    elided = true;
                }
            }
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                    quoted = 0;
                }
                out.push(c);
            }
        }
    }
    truncate_chars(&out, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_quoted_user_data() {
        let long = "x".repeat(10_000);
        let message = bound_message(&format!("invalid type: string \"{long}\", expected i64"));
        assert!(message.starts_with("invalid type: string \"xxx"));
        assert!(message.ends_with("…\", expected i64"), "{message}");
        assert!(message.chars().count() < 120, "{message}");
        // Apostrophes in prose only cut what follows them, never more than the limit.
        let message = bound_message(&format!("it's {long}"));
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert_eq!(bound_message("plain"), "plain");
    }

    #[test]
    fn excerpts_are_short() {
        let big = serde_json::json!({"a": "y".repeat(100_000), "b": [1, 2, 3]});
        let excerpt = json_excerpt(&big);
        assert_eq!(excerpt.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(excerpt.ends_with('…'));
        assert_eq!(json_excerpt(&serde_json::json!("lots")), "\"lots\"");
        assert_eq!(quote_name("orders"), "\"orders\"");
        assert!(quote_name(&"n".repeat(300)).ends_with("\"…"));
    }

    #[test]
    fn counting_writer_stops_past_its_limit() {
        let mut writer = CountingWriter::new(10);
        let big = serde_json::json!(["0123456789"]);
        assert!(serde_json::to_writer(&mut writer, &big).is_err());
        assert!(writer.overflowed());
        let mut writer = CountingWriter::new(100);
        assert!(serde_json::to_writer(&mut writer, &big).is_ok());
        assert_eq!(writer.written, 14);
    }
}
