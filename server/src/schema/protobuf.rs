//! Protobuf schemas: one message of a descriptor set, checked, encoded and decoded through
//! prost-reflect's `DynamicMessage`.

use std::collections::HashSet;
use std::fmt::Write as _;

use prost::Message as _;
use prost_reflect::{
    Cardinality, DescriptorPool, DeserializeOptions, DynamicMessage, EnumDescriptor,
    FieldDescriptor, Kind, MessageDescriptor, SerializeOptions, Syntax,
};
use serde::Serialize;
use serde_path_to_error::Segment;

use super::errors::{DecodeError, Violation, Violations};
use super::limits::{self, CountingWriter, DecodeLimits};
use super::{Format, json_pointer_push};

/// The canonical proto3 JSON mapping, as protojson writes it: lowerCamelCase names, 64-bit
/// integers as strings, default values left out.
const CANONICAL: SerializeOptions = SerializeOptions::new();

/// The form filters read: 64-bit integers as numbers (so `value.amount > 1000` compares
/// numbers) and every field present (so `value.amount == 0` holds for an unset proto3
/// field, which the wire cannot tell from 0). Names as in the canonical form, so a filter
/// names the fields a reader sees.
const FOR_FILTER: SerializeOptions = SerializeOptions::new()
    .stringify_64_bit_integers(false)
    .skip_default_fields(false);

/// JSON in (`encode_json`): a field the message does not have is a mistake, not something
/// to drop silently. Both the JSON name and the proto name of a field are accepted.
const STRICT: DeserializeOptions = DeserializeOptions::new().deny_unknown_fields(true);

/// Serialises a message with chosen options, for `serde_json`.
struct WithOptions<'a>(&'a DynamicMessage, &'a SerializeOptions);

impl Serialize for WithOptions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(serializer, self.1)
    }
}

/// A decoded message that serialises as filters read it ([`FOR_FILTER`]).
pub(super) struct FilterMessage(DynamicMessage);

impl Serialize for FilterMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(serializer, &FOR_FILTER)
    }
}

/// One message type of a descriptor set.
pub(super) struct ProtobufSchema {
    message: MessageDescriptor,
}

/// Why a descriptor set's bytes are not usable.
pub(super) fn pool_from_bytes(bytes: &[u8]) -> Result<DescriptorPool, String> {
    DescriptorPool::decode(bytes).map_err(|e| {
        let text = e.to_string();
        // A set written without --include_imports lacks the files it imports.
        let hint = if text.contains("not found") || text.contains("import") {
            " (was it written with --include_imports?)"
        } else {
            ""
        };
        format!("{}{hint}", limits::bound_message(&text))
    })
}

/// Why a message name is not in a pool: what to write instead.
pub(super) fn missing_message_hint(pool: &DescriptorPool, name: &str) -> String {
    let simple = name.rsplit('.').next().unwrap_or(name);
    let mut like: Vec<String> = pool
        .all_messages()
        .filter(|m| !m.is_map_entry() && m.name().eq_ignore_ascii_case(simple))
        .map(|m| m.full_name().to_owned())
        .collect();
    like.sort();
    if !like.is_empty() {
        return format!("did you mean {}?", like.join(" or "));
    }
    let mut all: Vec<String> = pool
        .all_messages()
        .filter(|m| !m.is_map_entry())
        .map(|m| m.full_name().to_owned())
        .collect();
    all.sort();
    let count = all.len();
    match count {
        0 => "it has no messages".to_owned(),
        1..=10 => format!("its messages: {}", all.join(", ")),
        _ => format!(
            "its messages: {}, and {} more",
            all[..10].join(", "),
            count - 10
        ),
    }
}

impl ProtobufSchema {
    /// The message `name` (full name, a leading `.` allowed) of `pool`.
    pub(super) fn new(pool: &DescriptorPool, name: &str) -> Option<Self> {
        let name = name.strip_prefix('.').unwrap_or(name);
        pool.get_message_by_name(name)
            .filter(|m| !m.is_map_entry())
            .map(|message| Self { message })
    }

    /// The message's full name.
    pub(super) fn full_name(&self) -> &str {
        self.message.full_name()
    }

    /// Checks that `value` is a well-formed encoding of the message. Unknown fields pass:
    /// a producer with a newer version of the message writes them, as Protobuf allows.
    pub(super) fn validate(&self, value: &[u8], pattern: &str) -> Result<(), Violations> {
        self.decode_message(value)
            .map(drop)
            .map_err(|e| wire_violation(pattern, &e))
    }

    /// The proto3 JSON mapping of the message in `json`, encoded to binary. Fields the
    /// message does not have are refused.
    pub(super) fn encode_json(
        &self,
        json: &serde_json::Value,
        pattern: &str,
    ) -> Result<Vec<u8>, Violations> {
        let mut track = serde_path_to_error::Track::new();
        let deserializer = serde_path_to_error::Deserializer::new(json, &mut track);
        match DynamicMessage::deserialize_with_options(self.message.clone(), deserializer, &STRICT)
        {
            Ok(message) => {
                let bytes = message.encode_to_vec();
                // JSON nests up to 128 levels, prost decodes 100: through the
                // `google.protobuf.Struct`/`Value` types a deep JSON value becomes a message
                // no reader could decode. Check the rare deep input the way readers will.
                if json_depth_over(json, SHALLOW) {
                    self.validate(&bytes, pattern)?;
                }
                Ok(bytes)
            }
            Err(error) => {
                let mut path = String::new();
                for segment in &track.path() {
                    match segment {
                        Segment::Seq { index } => json_pointer_push(&mut path, &index.to_string()),
                        Segment::Map { key } => json_pointer_push(&mut path, key),
                        Segment::Enum { variant } => json_pointer_push(&mut path, variant),
                        Segment::Unknown => json_pointer_push(&mut path, "?"),
                    }
                }
                let message = error.to_string();
                // prost-reflect refuses an unknown key in the map visitor, after the key was
                // read and before its value: the path stops at the object, so add the key.
                if let Some(key) = message
                    .strip_prefix("unrecognized field name '")
                    .and_then(|rest| rest.strip_suffix('\''))
                {
                    json_pointer_push(&mut path, key);
                }
                Err(Violations::one(
                    pattern,
                    Format::Protobuf,
                    limits::truncate_chars(&path, limits::MAX_MESSAGE_CHARS),
                    limits::bound_message(&message),
                ))
            }
        }
    }

    /// The value as the canonical proto3 JSON mapping.
    pub(super) fn decode(
        &self,
        value: &[u8],
        limits: &DecodeLimits,
    ) -> Result<serde_json::Value, DecodeError> {
        let message = self.decode_bounded(value, limits, &CANONICAL)?;
        serde_json::to_value(WithOptions(&message, &CANONICAL)).map_err(|e| {
            DecodeError::NoJsonForm {
                reason: limits::bound_message(&e.to_string()),
            }
        })
    }

    /// The message, for filters to serialise with [`FOR_FILTER`] (see
    /// [`FilterMessage`]): no JSON tree is built.
    pub(super) fn decode_for_filter(
        &self,
        value: &[u8],
        limits: &DecodeLimits,
    ) -> Result<FilterMessage, DecodeError> {
        self.decode_bounded(value, limits, &FOR_FILTER)
            .map(FilterMessage)
    }

    /// Decodes `value` and checks that its JSON written with `options` fits the limits.
    fn decode_bounded(
        &self,
        value: &[u8],
        limits: &DecodeLimits,
        options: &SerializeOptions,
    ) -> Result<DynamicMessage, DecodeError> {
        if value.len() > limits.max_bytes {
            return Err(DecodeError::TooLarge {
                size: value.len(),
                limit: limits.max_bytes,
            });
        }
        let message = self
            .decode_message(value)
            .map_err(|e| DecodeError::Protobuf {
                message: self.message.full_name().to_owned(),
                reason: wire_reason(&e).1,
            })?;
        // Measure the JSON before anything builds it: a packed repeated field of one-byte
        // varints or of enums with long names grows many times over in JSON, and a tree
        // of it costs more still. A serialisation into nothing, stopped at the limit.
        let mut counter = CountingWriter::new(limits.max_json_bytes);
        match serde_json::to_writer(&mut counter, &WithOptions(&message, options)) {
            Ok(()) => Ok(message),
            Err(_) if counter.overflowed() => Err(DecodeError::JsonTooLarge {
                limit: limits.max_json_bytes,
            }),
            Err(e) => Err(DecodeError::NoJsonForm {
                reason: limits::bound_message(&e.to_string()),
            }),
        }
    }

    fn decode_message(&self, value: &[u8]) -> Result<DynamicMessage, prost::DecodeError> {
        // prost's decoder stops at 100 nested messages or groups (RECURSION_LIMIT), so a
        // deeply nested value is an error, not a stack overflow.
        DynamicMessage::decode(self.message.clone(), value)
    }

    /// A proto-like rendering of the message and of the messages and enums it uses.
    pub(super) fn definition(&self) -> String {
        render(&self.message)
    }
}

/// JSON this shallow cannot encode to a message nested deeper than prost decodes (each
/// JSON level is at most two message levels, `Value` and `Struct`/`ListValue`).
const SHALLOW: usize = 40;

/// Whether `json` nests deeper than `limit` (arrays and objects), without recursion.
fn json_depth_over(json: &serde_json::Value, limit: usize) -> bool {
    let mut stack = vec![(json, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        match value {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            serde_json::Value::Object(fields) => {
                stack.extend(fields.values().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    false
}

/// (field path, description) of a prost decode error, whose text is
/// `failed to decode Protobuf message: Msg.field: Msg.field: description`.
fn wire_reason(error: &prost::DecodeError) -> (String, String) {
    let text = error.to_string();
    let text = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    match text.rsplit_once(": ") {
        Some((stack, description)) => (stack.replace(": ", "/"), description.to_owned()),
        None => (String::new(), text.to_owned()),
    }
}

fn wire_violation(pattern: &str, error: &prost::DecodeError) -> Violations {
    let (path, message) = wire_reason(error);
    Violations::new(
        pattern,
        Format::Protobuf,
        vec![Violation {
            path: limits::truncate_chars(&path, limits::MAX_MESSAGE_CHARS),
            message: limits::bound_message(&message),
        }],
        0,
    )
}

/// Renders `root` and every message and enum it reaches (but the well-known types of
/// `google.protobuf`, whose JSON forms are special and well documented), in proto syntax
/// with full names for types, cut to [`limits::MAX_DEFINITION_BYTES`].
fn render(root: &MessageDescriptor) -> String {
    let mut out = String::new();
    let syntax = match root.parent_file().syntax() {
        Syntax::Proto2 => "proto2",
        Syntax::Proto3 => "proto3",
    };
    let _ = writeln!(
        out,
        "// {} from {} ({syntax})",
        root.full_name(),
        root.parent_file().name()
    );
    let mut seen = HashSet::new();
    let mut queue = vec![Type::Message(root.clone())];
    seen.insert(root.full_name().to_owned());
    let mut next = 0;
    while next < queue.len() {
        if out.len() > limits::MAX_DEFINITION_BYTES {
            break;
        }
        let item = queue[next].clone();
        next += 1;
        match item {
            Type::Message(message) => {
                let mut uses = Vec::new();
                render_message(&mut out, &message, &mut uses);
                for used in uses {
                    let name = used.full_name().to_owned();
                    if !name.starts_with("google.protobuf.") && seen.insert(name) {
                        queue.push(used);
                    }
                }
            }
            Type::Enum(e) => render_enum(&mut out, &e),
        }
    }
    cut_definition(out)
}

/// `text` cut to [`limits::MAX_DEFINITION_BYTES`] with a note saying so.
pub(super) fn cut_definition(mut text: String) -> String {
    const NOTE: &str = "\n// … truncated: the definition is longer than 64 KiB\n";
    if text.len() <= limits::MAX_DEFINITION_BYTES {
        return text;
    }
    let mut at = limits::MAX_DEFINITION_BYTES - NOTE.len();
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str(NOTE);
    text
}

#[derive(Clone)]
enum Type {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

impl Type {
    fn full_name(&self) -> &str {
        match self {
            Self::Message(m) => m.full_name(),
            Self::Enum(e) => e.full_name(),
        }
    }
}

fn render_message(out: &mut String, message: &MessageDescriptor, uses: &mut Vec<Type>) {
    let _ = writeln!(out, "\n// {}", message.full_name());
    let _ = writeln!(out, "message {} {{", message.name());
    let proto2 = matches!(message.parent_file().syntax(), Syntax::Proto2);
    let mut oneofs_done = HashSet::new();
    for field in message.fields() {
        match field.containing_oneof() {
            Some(oneof) if !oneof.is_synthetic() => {
                if oneofs_done.insert(oneof.name().to_owned()) {
                    let _ = writeln!(out, "  oneof {} {{", oneof.name());
                    for member in oneof.fields() {
                        out.push_str("    ");
                        render_field(out, &member, Labels::None, uses);
                    }
                    out.push_str("  }\n");
                }
            }
            _ => {
                out.push_str("  ");
                let labels = if proto2 {
                    Labels::Proto2
                } else {
                    Labels::Proto3
                };
                render_field(out, &field, labels, uses);
            }
        }
    }
    out.push_str("}\n");
}

/// Which labels a field is written with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Labels {
    /// proto2: every field has one.
    Proto2,
    /// proto3: `repeated`, and `optional` for explicit presence.
    Proto3,
    /// In a oneof: none.
    None,
}

fn render_field(out: &mut String, field: &FieldDescriptor, labels: Labels, uses: &mut Vec<Type>) {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let key = type_name(&entry.map_entry_key_field().kind(), uses);
        let value = type_name(&entry.map_entry_value_field().kind(), uses);
        let _ = writeln!(
            out,
            "map<{key}, {value}> {} = {};",
            field.name(),
            field.number()
        );
        return;
    }
    let label = match field.cardinality() {
        _ if labels == Labels::None => "",
        Cardinality::Repeated => "repeated ",
        Cardinality::Required => "required ",
        Cardinality::Optional if labels == Labels::Proto2 => "optional ",
        // proto3 `optional`: a field with presence that is not in a real oneof.
        Cardinality::Optional
            if field.supports_presence() && !matches!(field.kind(), Kind::Message(_)) =>
        {
            "optional "
        }
        Cardinality::Optional => "",
    };
    let kind = type_name(&field.kind(), uses);
    let _ = writeln!(out, "{label}{kind} {} = {};", field.name(), field.number());
}

fn type_name(kind: &Kind, uses: &mut Vec<Type>) -> String {
    let name = match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(m) => {
            uses.push(Type::Message(m.clone()));
            return m.full_name().to_owned();
        }
        Kind::Enum(e) => {
            uses.push(Type::Enum(e.clone()));
            return e.full_name().to_owned();
        }
    };
    name.to_owned()
}

fn render_enum(out: &mut String, e: &EnumDescriptor) {
    let _ = writeln!(out, "\n// {}", e.full_name());
    let _ = writeln!(out, "enum {} {{", e.name());
    for value in e.values() {
        let _ = writeln!(out, "  {} = {};", value.name(), value.number());
    }
    out.push_str("}\n");
}
