//! Per-topic schemas: what a topic's values must be on publish, and how they read as JSON.
//!
//! # The schema file
//!
//! `--schemas FILE` names a TOML file (reloaded on SIGHUP) that maps topic names or globs to
//! schemas. Paths in it are relative to the file's directory:
//!
//! ```toml
//! [[topic]]
//! name = "orders"
//! # A descriptor set as `buf build -o` or `protoc --descriptor_set_out --include_imports`
//! # write it, and the message's full name.
//! protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }
//!
//! [[topic]]
//! name = "payments.*"
//! json_schema = "payment.schema.json"    # draft 2020-12 unless `$schema` says otherwise
//! ```
//!
//! Each entry has exactly one of `protobuf` and `json_schema`; unknown keys are errors, so a
//! typo cannot silently turn a check off. A name is a topic name, or a glob where `*`
//! matches any run of characters (no other wildcard). A topic takes the schema of its exact
//! name if there is one, else of the first glob listed that matches it. A JSON Schema's
//! `$ref`s resolve only inside the document: a remote or file reference fails at load, the
//! server fetches nothing.
//!
//! # Built-in schemas
//!
//! The topics the server itself writes — R2 and R3 (PageEvent JSON) and R4 (count records)
//! — always have their built-in JSON Schemas (`builtin/*.schema.json`), with or without a
//! file. A file entry naming one of them exactly is an error: the server's own readers parse
//! those topics, and a different schema could only let through values they then drop. (A
//! glob that happens to match them does not apply to them: exact names win.)
//!
//! # Write side and read side
//!
//! On publish, [`TopicSchema::validate`] checks raw bytes and [`TopicSchema::encode_json`]
//! turns JSON into the bytes to write (binary for Protobuf). On read,
//! [`TopicSchema::decode`] gives the canonical JSON (protojson's for Protobuf; a JSON
//! Schema topic's JSON is not re-checked, as records may predate the schema) and
//! [`TopicSchema::decode_for_filter`] the form filters compare (64-bit integers as numbers,
//! see [`FilterDecoded`]). Avro is not supported.
//!
//! # Limits
//!
//! The file, the schemas it names and the values checked are input from outside; every bound
//! is a typed error ([`limits`]): the file at most 1 MiB and 1000 entries, each referenced
//! document at most 16 MiB (256 MiB together), names at most 249 characters of
//! `[a-zA-Z0-9._-*]`. On the value side: JSON nesting stops at 128 levels (serde_json) and
//! Protobuf nesting at 100 (prost); a value longer than [`DecodeLimits::max_bytes`] is not
//! decoded and decoded JSON larger than [`DecodeLimits::max_json_bytes`] is refused (packed
//! repeated fields expand a lot in JSON). JSON Schema patterns run on `fancy-regex`, which
//! hands every pattern without lookaround or backreferences to the linear-time `regex`
//! crate and bounds the backtracking of the others; compiled patterns have a size limit.
//! Messages quote user data at most 64 characters at a time and list at most 3 violations,
//! so a refusal never echoes a value.

mod builtin;
mod errors;
mod file;
mod json_schema;
pub mod limits;
mod live;
mod protobuf;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

pub use errors::{DecodeError, Violations};
pub use file::SchemaFileError;
pub use limits::DecodeLimits;
pub use live::Live;

use file::Glob;
use json_schema::JsonSchema;
use protobuf::ProtobufSchema;

/// The topics the server itself writes, whose schemas are built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTopics {
    /// The page-event topic the supplier writes (`--supplier-topic`; PageEvent JSON).
    pub r2: String,
    /// The topic the transform writes (`--transform-topic`; PageEvent JSON).
    pub r3: String,
    /// The topic the analytics workers write (`--stats-topic`; count records).
    pub r4: String,
}

/// Every topic's schema: the built-ins and a schema file's entries. Immutable once built;
/// a reload builds a new one (the integrator swaps an `Arc<Schemas>`).
pub struct Schemas {
    /// Exact names (built-ins included).
    exact: HashMap<String, Arc<TopicSchema>>,
    /// Globs, in the file's order: the first that matches wins.
    globs: Vec<(Glob, Arc<TopicSchema>)>,
    /// Every entry, built-ins first, then the file's in its order.
    entries: Vec<Arc<TopicSchema>>,
}

impl fmt::Debug for Schemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.iter()).finish()
    }
}

impl Schemas {
    /// The built-in schemas alone: what the server runs with without `--schemas`.
    pub fn builtin(topics: &ServerTopics) -> Self {
        let mut schemas = Self {
            exact: HashMap::new(),
            globs: Vec::new(),
            entries: Vec::new(),
        };
        for (topic, schema) in [
            (&topics.r2, builtin::page_event()),
            (&topics.r3, builtin::page_event()),
            (&topics.r4, builtin::stats_record()),
        ] {
            // R2 and R3 may be one topic in odd setups: keep the first.
            if !schemas.exact.contains_key(topic.as_str()) {
                schemas.push(TopicSchema {
                    pattern: topic.clone(),
                    source: builtin::SOURCE.to_owned(),
                    kind: Kind::Json(schema),
                });
            }
        }
        schemas
    }

    /// Reads and parses the schema file at `path`; relative paths in it are taken from its
    /// directory.
    pub fn load(path: &Path, topics: &ServerTopics) -> Result<Self, SchemaFileError> {
        file::load(path, topics, &file::FileLimits::DEFAULT)
    }

    /// Parses a schema file's text; relative paths in it are taken from `base_dir`. Errors
    /// name the file as `<schemas>`.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        topics: &ServerTopics,
    ) -> Result<Self, SchemaFileError> {
        file::parse(
            text,
            base_dir,
            file::TEXT_LABEL,
            topics,
            &file::FileLimits::DEFAULT,
        )
    }

    /// The schema of `topic`: its exact entry, else the first glob that matches it.
    pub fn for_topic(&self, topic: &str) -> Option<Arc<TopicSchema>> {
        if let Some(schema) = self.exact.get(topic) {
            return Some(Arc::clone(schema));
        }
        self.globs
            .iter()
            .find(|(glob, _)| glob.matches(topic))
            .map(|(_, schema)| Arc::clone(schema))
    }

    /// How many entries, built-ins included (for the startup banner).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry at all (never: the built-ins are always there).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry: the built-ins, then the file's in its order (for listing them).
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Arc<TopicSchema>> + '_ {
        self.entries.iter()
    }

    fn push(&mut self, schema: TopicSchema) {
        let schema = Arc::new(schema);
        if schema.pattern.contains('*') {
            self.globs
                .push((Glob::new(&schema.pattern), Arc::clone(&schema)));
        } else {
            self.exact
                .insert(schema.pattern.clone(), Arc::clone(&schema));
        }
        self.entries.push(schema);
    }
}

/// A schema's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One message type of a Protobuf descriptor set.
    Protobuf,
    /// A JSON Schema document.
    JsonSchema,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Protobuf => "Protobuf",
            Self::JsonSchema => "JSON Schema",
        })
    }
}

/// One entry: the schema a topic name or glob was declared with.
pub struct TopicSchema {
    pattern: String,
    source: String,
    kind: Kind,
}

enum Kind {
    Protobuf(ProtobufSchema),
    /// Shared: the built-ins are compiled once per process.
    Json(Arc<JsonSchema>),
}

impl fmt::Debug for TopicSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSchema")
            .field("pattern", &self.pattern)
            .field("format", &self.format())
            .field("source", &self.source)
            .field("message", &self.message_name())
            .finish()
    }
}

/// A decoded value for filters: it serialises as JSON in which 64-bit integers are numbers
/// (so `value.amount > 1000` compares numbers) and, for Protobuf, every field is present
/// with its default (so `value.amount == 0` holds for an unset field, which the wire cannot
/// tell from 0). Field names are those of the canonical form ([`TopicSchema::decode`]).
///
/// Not a `serde_json::Value`: for Protobuf it holds the decoded message and serialises it
/// straight into whatever the filter builds (`filter::value_from_serialize`), with no JSON
/// tree in between. For JSON Schema topics it holds the parsed JSON; a filter that has the
/// raw bytes can build its value from them directly (`filter::value_from_json`), which gives
/// the same value for less.
pub struct FilterDecoded(FilterInner);

enum FilterInner {
    Message(protobuf::FilterMessage),
    Json(serde_json::Value),
}

impl Serialize for FilterDecoded {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            FilterInner::Message(message) => message.serialize(serializer),
            FilterInner::Json(json) => json.serialize(serializer),
        }
    }
}

impl fmt::Debug for FilterDecoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            FilterInner::Message(_) => f.write_str("FilterDecoded(Protobuf message)"),
            FilterInner::Json(json) => write!(f, "FilterDecoded({})", limits::json_excerpt(json)),
        }
    }
}

impl TopicSchema {
    /// The schema's format.
    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Protobuf(_) => Format::Protobuf,
            Kind::Json(_) => Format::JsonSchema,
        }
    }

    /// The topic name or glob the schema was declared for.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Where the schema comes from: `built-in`, or the path of the descriptor set or JSON
    /// Schema document.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The Protobuf message's full name (`shop.v1.Order`); `None` for JSON Schema.
    pub fn message_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Protobuf(p) => Some(p.full_name()),
            Kind::Json(_) => None,
        }
    }

    /// The schema for people (describe): the JSON Schema document as written, or for
    /// Protobuf the message and the messages and enums it uses in proto syntax. At most
    /// 64 KiB, cut with a note.
    pub fn definition(&self) -> String {
        match &self.kind {
            Kind::Protobuf(p) => p.definition(),
            Kind::Json(j) => protobuf::cut_definition(j.text().to_owned()),
        }
    }

    /// The content type of values in this format.
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Protobuf(_) => "application/x-protobuf",
            Kind::Json(_) => "application/json",
        }
    }

    /// Checks a value published as raw bytes. Protobuf: a well-formed encoding of the
    /// message (unknown fields are allowed, as Protobuf's compatibility rules allow). JSON
    /// Schema: UTF-8 JSON that the schema accepts.
    pub fn validate(&self, value: &[u8]) -> Result<(), Violations> {
        match &self.kind {
            Kind::Protobuf(p) => p.validate(value, &self.pattern),
            Kind::Json(j) => j.validate(value, &self.pattern),
        }
    }

    /// The bytes to publish for a value given as JSON. Protobuf: the proto3 JSON mapping
    /// (JSON or proto field names; 64-bit integers as strings or numbers), unknown fields
    /// refused, encoded to binary. JSON Schema: checked, then written as compact JSON.
    pub fn encode_json(&self, json: &serde_json::Value) -> Result<Vec<u8>, Violations> {
        match &self.kind {
            Kind::Protobuf(p) => p.encode_json(json, &self.pattern),
            Kind::Json(j) => j.encode_json(json, &self.pattern),
        }
    }

    /// The read side: the value as canonical JSON — for Protobuf the proto3 JSON mapping as
    /// protojson writes it (lowerCamelCase names, 64-bit integers as strings, defaults
    /// left out); for JSON Schema the JSON as parsed, not checked against the schema
    /// (records may predate it). On `Err` the caller delivers the value raw with the reason.
    pub fn decode(
        &self,
        value: &[u8],
        limits: &DecodeLimits,
    ) -> Result<serde_json::Value, DecodeError> {
        match &self.kind {
            Kind::Protobuf(p) => p.decode(value, limits),
            Kind::Json(_) => json_schema::decode(value, limits),
        }
    }

    /// The read side for filters: as [`TopicSchema::decode`], but 64-bit integers are JSON
    /// numbers and Protobuf fields are all present (see [`FilterDecoded`]).
    pub fn decode_for_filter(
        &self,
        value: &[u8],
        limits: &DecodeLimits,
    ) -> Result<FilterDecoded, DecodeError> {
        Ok(FilterDecoded(match &self.kind {
            Kind::Protobuf(p) => FilterInner::Message(p.decode_for_filter(value, limits)?),
            Kind::Json(_) => FilterInner::Json(json_schema::decode(value, limits)?),
        }))
    }
}

/// Drives [`Schemas::parse`] on arbitrary bytes (the cargo-fuzz target): text that is not
/// UTF-8 is skipped; paths resolve under a directory that does not exist, so no file is
/// read. Must never panic.
#[cfg(test)]
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let topics = ServerTopics {
        r2: "R2".to_owned(),
        r3: "R3".to_owned(),
        r4: "R4".to_owned(),
    };
    if let Ok(schemas) = Schemas::parse(text, Path::new("/nonexistent"), &topics) {
        // Whatever parsed must answer lookups.
        for schema in schemas.entries() {
            let _ = schemas.for_topic(schema.pattern());
        }
    }
}

/// Appends `segment` to a JSON pointer, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`),
/// and cut to 64 characters (with `…`): object keys are user data.
fn json_pointer_push(pointer: &mut String, segment: &str) {
    pointer.push('/');
    let mut chars = segment.chars();
    for c in chars.by_ref().take(limits::MAX_QUOTED_CHARS) {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
    if chars.next().is_some() {
        pointer.push('…');
    }
}

// The integrator shares schemas across tasks.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Schemas>();
    send_sync::<TopicSchema>();
};
