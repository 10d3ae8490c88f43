//! A `Record` as canonical proto3 JSON, written straight from the prost type into a buffer:
//! the SSE records stream's hot path. The descriptor-driven writer (prost-reflect over a
//! DynamicMessage) spent most of an SSE stream's time walking descriptors, allocating and
//! freeing; this one writes the same bytes — the property test below holds it to
//! prost-reflect's output for any record — with the fields in field-number order,
//! lowerCamelCase names, 64-bit integers as strings, bytes as base64, enums by name,
//! timestamps in RFC 3339, scalars and lists always, optional and message fields only when
//! set (as `SerializeOptions::skip_default_fields(false)` does).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use streamgate::proto::{self, Record};

/// The fields of `Record`, in field-number order, by their proto names.
const FIELDS: [&str; 11] = [
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestamp_type",
    "key",
    "headers",
    "value",
    "page_event",
    "decoded",
    "decode_error",
];

/// Which fields of a record to write (a read mask's, or all).
#[derive(Debug, Clone, Copy)]
pub struct RecordJson {
    fields: [bool; FIELDS.len()],
}

impl RecordJson {
    /// Every field, or those `paths` names.
    pub fn new(paths: Option<&[String]>) -> Self {
        let fields = match paths {
            None => [true; FIELDS.len()],
            // `decoded.amount` keeps `decoded` (the server already cut it down).
            Some(paths) => FIELDS.map(|f| {
                paths
                    .iter()
                    .any(|p| p == f || p.strip_prefix(f).is_some_and(|r| r.starts_with('.')))
            }),
        };
        Self { fields }
    }

    /// Appends `record`'s JSON to `out`.
    pub fn write(&self, record: &Record, out: &mut String) {
        let mut object = Object::new(out);
        let [
            topic,
            partition,
            offset,
            timestamp,
            timestamp_type,
            key,
            headers,
            value,
            event,
            decoded,
            decode_error,
        ] = self.fields;
        if topic {
            object.string("topic", &record.topic);
        }
        if partition {
            object.raw("partition", format_args!("{}", record.partition));
        }
        if offset {
            object.raw("offset", format_args!("\"{}\"", record.offset));
        }
        if timestamp && let Some(at) = &record.timestamp {
            object.raw("timestamp", format_args!("\"{at}\""));
        }
        if timestamp_type {
            match proto::TimestampType::try_from(record.timestamp_type) {
                Ok(known) => object.string("timestampType", known.as_str_name()),
                Err(_) => object.raw("timestampType", format_args!("{}", record.timestamp_type)),
            }
        }
        if key && let Some(key) = &record.key {
            object.bytes("key", key);
        }
        if headers {
            object.key("headers");
            object.out.push('[');
            for (i, header) in record.headers.iter().enumerate() {
                if i > 0 {
                    object.out.push(',');
                }
                let mut entry = Object::new(object.out);
                entry.string("key", &header.key);
                entry.bytes("value", &header.value);
                entry.end();
            }
            object.out.push(']');
        }
        if value && let Some(value) = &record.value {
            object.bytes("value", value);
        }
        if event && let Some(page) = &record.page_event {
            object.key("pageEvent");
            page_event(page, object.out);
        }
        if decoded && let Some(json) = &record.decoded {
            object.key("decoded");
            json_value(json, object.out);
        }
        if decode_error {
            object.string("decodeError", &record.decode_error);
        }
        object.end();
    }
}

/// A `google.protobuf.Value` as its JSON (numbers as serde_json writes an f64).
fn json_value(value: &prost_types::Value, out: &mut String) {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => out.push_str("null"),
        Some(Kind::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Kind::NumberValue(n)) => match serde_json::Number::from_f64(*n) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        },
        Some(Kind::StringValue(s)) => escaped(s, out),
        Some(Kind::ListValue(list)) => {
            out.push('[');
            for (i, item) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
        Some(Kind::StructValue(object)) => {
            let mut writer = Object::new(out);
            for (name, item) in &object.fields {
                writer.key_escaped(name);
                json_value(item, writer.out);
            }
            writer.end();
        }
    }
}

fn page_event(page: &proto::PageEvent, out: &mut String) {
    let mut object = Object::new(out);
    object.string("name", &page.name);
    if let Some(user) = &page.user {
        object.string("user", user);
    }
    if let Some(date) = &page.date {
        object.raw("date", format_args!("\"{date}\""));
    }
    if let Some(duration) = page.duration_ms {
        object.raw("durationMs", format_args!("\"{duration}\""));
    }
    object.end();
}

/// A JSON object being written.
struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, empty: true }
    }

    fn key(&mut self, name: &str) {
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
    }

    /// A key that may need escaping (a decoded value's field names are anyone's).
    fn key_escaped(&mut self, name: &str) {
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(',');
        }
        escaped(name, self.out);
        self.out.push(':');
    }

    fn raw(&mut self, name: &str, value: std::fmt::Arguments<'_>) {
        self.key(name);
        let _ = self.out.write_fmt(value);
    }

    fn string(&mut self, name: &str, value: &str) {
        self.key(name);
        escaped(value, self.out);
    }

    fn bytes(&mut self, name: &str, value: &[u8]) {
        self.key(name);
        self.out.push('"');
        STANDARD.encode_string(value, self.out);
        self.out.push('"');
    }

    fn end(self) {
        self.out.push('}');
    }
}

/// `value` as a JSON string, escaped as serde_json escapes it.
fn escaped(value: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, SerializeOptions};

    use super::*;
    use crate::http::connect::Methods;

    /// The descriptor-driven JSON of `record`, as the rest of the server writes it.
    fn reference(record: &Record, paths: Option<&[String]>) -> serde_json::Value {
        let methods = Methods::load().expect("descriptors");
        let descriptor = methods
            .at("/streamgate.v1.EventGateway/Subscribe")
            .expect("Subscribe")
            .output()
            .parent_pool()
            .get_message_by_name("streamgate.v1.Record")
            .expect("Record");
        let message =
            DynamicMessage::decode(descriptor, record.encode_to_vec().as_slice()).expect("decodes");
        let options = SerializeOptions::new().skip_default_fields(false);
        let mut json = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .expect("serializes");
        if let (Some(paths), serde_json::Value::Object(fields)) = (paths, &mut json) {
            let names: Vec<String> = paths.iter().map(|p| camel(p)).collect();
            fields.retain(|name, _| names.contains(name));
        }
        json
    }

    fn camel(name: &str) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in name.chars() {
            match (c, upper) {
                ('_', _) => upper = true,
                (c, true) => {
                    out.extend(c.to_uppercase());
                    upper = false;
                }
                (c, false) => out.push(c),
            }
        }
        out
    }

    fn ours(record: &Record, paths: Option<&[String]>) -> serde_json::Value {
        let mut out = String::new();
        RecordJson::new(paths).write(record, &mut out);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
        proptest::option::of(
            (-62_135_596_800i64..253_402_300_799, 0i32..1_000_000_000)
                .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        )
    }

    prop_compose! {
        fn record()(
            topic in "\\PC{0,12}",
            partition in any::<i32>(),
            offset in any::<i64>(),
            timestamp in timestamp(),
            timestamp_type in prop_oneof![Just(0), Just(1), Just(2), any::<i32>()],
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            headers in proptest::collection::vec(("[\\x00-\\x7f]{0,8}", proptest::collection::vec(any::<u8>(), 0..8)), 0..3),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            page in proptest::option::of((".{0,8}", proptest::option::of("[a-z\"\\\\]{0,4}"), timestamp(), proptest::option::of(any::<i64>()))),
            decoded in proptest::option::of(json()),
            decode_error in "\\PC{0,8}",
        ) -> Record {
            Record {
                topic,
                partition,
                offset,
                timestamp,
                timestamp_type,
                key: key.map(Bytes::from),
                headers: headers
                    .into_iter()
                    .map(|(key, value)| proto::Header { key, value: Bytes::from(value) })
                    .collect(),
                value: value.map(Bytes::from),
                page_event: page.map(|(name, user, date, duration_ms)| proto::PageEvent {
                    name,
                    user,
                    date,
                    duration_ms,
                }),
                decoded: decoded.map(crate::gateway::select::decoded::to_proto),
                decode_error,
            }
        }
    }

    /// Any JSON value a few levels deep (finite numbers: JSON has no others).
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            (-1e15f64..1e15).prop_map(|n| serde_json::json!(n)),
            any::<i32>().prop_map(|n| serde_json::json!(n)),
            "\\PC{0,6}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("\\PC{0,5}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn writes_what_the_descriptors_write(record in record()) {
            prop_assert_eq!(ours(&record, None), reference(&record, None));
        }

        #[test]
        fn writes_only_the_masked_fields(record in record(), mask in proptest::sample::subsequence(FIELDS.to_vec(), 0..=FIELDS.len())) {
            let paths: Vec<String> = mask.iter().map(|f| (*f).to_owned()).collect();
            prop_assert_eq!(ours(&record, Some(&paths)), reference(&record, Some(&paths)));
        }
    }

    #[test]
    fn escapes_as_serde_json_does() {
        for text in [
            "plain",
            "q\"b\\",
            "\n\r\t\u{8}\u{c}",
            "\u{1}\u{1f}",
            "é\u{2028}😀",
        ] {
            let mut ours = String::new();
            escaped(text, &mut ours);
            assert_eq!(ours, serde_json::to_string(text).expect("json"), "{text:?}");
        }
    }
}
