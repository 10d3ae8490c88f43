//! A record's value decoded as JSON for the client (`Record.decoded`), or why it could not
//! be (`Record.decode_error`), and the read mask's paths inside it.

use prost_types::value::Kind;
use serde_json::Value as Json;

use crate::schema::{DecodeLimits, TopicSchema};

/// Field tags of `Record.decoded` and `Record.decode_error` (event.proto).
const DECODED_TAG: u32 = 10;
const DECODE_ERROR_TAG: u32 = 11;

/// Most paths a read mask may name inside the decoded value.
pub const MAX_PATHS: usize = 64;

/// The outcome of decoding one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// The value, as `google.protobuf.Value`.
    Value(prost_types::Value),
    /// Why it did not decode.
    Error(String),
}

impl Decoded {
    /// Appends the fields this sets on a `Record` (`decoded` or `decode_error`), encoded.
    pub fn encode_fields(&self, buf: &mut Vec<u8>) {
        match self {
            Self::Value(value) => prost::encoding::message::encode(DECODED_TAG, value, buf),
            Self::Error(reason) => prost::encoding::string::encode(DECODE_ERROR_TAG, reason, buf),
        }
    }

    /// Sets those fields on `record`.
    pub fn set_on(self, record: &mut streamgate::proto::Record) {
        match self {
            Self::Value(value) => record.decoded = Some(value),
            Self::Error(reason) => record.decode_error = reason,
        }
    }
}

/// The paths inside the decoded value a read mask named (`decoded.amount` → `["amount"]`);
/// none: the whole value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedPaths(Vec<Vec<String>>);

impl DecodedPaths {
    /// From the mask's `decoded.`-prefixed paths, prefix removed. An empty segment
    /// (`decoded..a`, `decoded.a.`) is refused with its path.
    pub fn new(paths: &[&str]) -> Result<Self, String> {
        if paths.len() > MAX_PATHS {
            return Err(format!(
                "read_mask names {} paths inside decoded; at most {MAX_PATHS}",
                paths.len()
            ));
        }
        let mut parsed = Vec::with_capacity(paths.len());
        for path in paths {
            let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
            if segments.iter().any(String::is_empty) {
                let quoted: String = path.chars().take(64).collect();
                return Err(format!(
                    "read_mask: \"decoded.{quoted}\" has an empty segment"
                ));
            }
            parsed.push(segments);
        }
        Ok(Self(parsed))
    }

    /// Whether the whole value is kept.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` with only the named paths (objects along them kept, the rest dropped).
    fn keep(&self, value: Json) -> Json {
        if self.is_all() {
            return value;
        }
        let mut out = Json::Object(serde_json::Map::new());
        for path in &self.0 {
            if let Some(found) = lookup(&value, path) {
                insert(&mut out, path, found.clone());
            }
        }
        out
    }
}

fn lookup<'v>(value: &'v Json, path: &[String]) -> Option<&'v Json> {
    path.iter()
        .try_fold(value, |at, segment| at.as_object()?.get(segment))
}

fn insert(out: &mut Json, path: &[String], value: Json) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = out;
    for segment in parents {
        let Json::Object(map) = at else { return };
        at = map
            .entry(segment.clone())
            .or_insert_with(|| Json::Object(serde_json::Map::new()));
    }
    if let Json::Object(map) = at {
        map.insert(last.clone(), value);
    }
}

/// Decodes `value` by `schema` (or, without one, as JSON), keeping `paths`.
pub fn decode(
    value: &[u8],
    schema: Option<&TopicSchema>,
    limits: &DecodeLimits,
    paths: &DecodedPaths,
) -> Decoded {
    let json = match schema {
        Some(schema) => schema.decode(value, limits).map_err(|e| e.to_string()),
        None if value.len() > limits.max_bytes => Err(format!(
            "the value is {} bytes, more than --max-decode-bytes ({})",
            value.len(),
            limits.max_bytes
        )),
        None => serde_json::from_slice::<Json>(value)
            .map_err(|_| "the topic has no schema and the value is not JSON".to_owned()),
    };
    match json {
        Ok(json) => Decoded::Value(to_proto(paths.keep(json))),
        Err(reason) => Decoded::Error(reason),
    }
}

/// JSON as `google.protobuf.Value` (numbers become doubles, as that type holds them).
pub fn to_proto(json: Json) -> prost_types::Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_proto).collect(),
        }),
        Json::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_proto(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// `google.protobuf.Value` as JSON: the inverse of [`to_proto`], integral numbers written
/// as integers (for a publish given as JSON).
pub fn from_proto(value: prost_types::Value) -> Json {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::ListValue(list)) => {
            Json::Array(list.values.into_iter().map(from_proto).collect())
        }
        Some(Kind::StructValue(object)) => Json::Object(
            object
                .fields
                .into_iter()
                .map(|(k, v)| (k, from_proto(v)))
                .collect(),
        ),
    }
}

/// A double as JSON: an integer when it is one that a double holds exactly.
fn number(n: f64) -> Json {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // In range and integral: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Json::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_keep_only_what_they_name() {
        let paths = DecodedPaths::new(&["amount", "customer.id", "missing.x"]).expect("valid");
        let kept = paths.keep(json!({
            "id": "o-1", "amount": 1200, "customer": {"id": "c", "name": "Ada"}
        }));
        assert_eq!(kept, json!({"amount": 1200, "customer": {"id": "c"}}));
        assert!(DecodedPaths::new(&["a..b"]).is_err());
        assert!(DecodedPaths::new(&["a."]).is_err());
        assert!(DecodedPaths::new(&vec!["a"; MAX_PATHS + 1]).is_err());
    }

    #[test]
    fn json_round_trips_through_protobuf_value() {
        let value = json!({"a": [1, 2.5, null, true, "s"], "b": {"c": -3}, "big": 1e300});
        assert_eq!(from_proto(to_proto(value.clone())), value);
    }

    #[test]
    fn untyped_values_decode_when_they_are_json() {
        let limits = DecodeLimits {
            max_bytes: 100,
            max_json_bytes: 1000,
        };
        let all = DecodedPaths::default();
        assert_eq!(
            decode(br#"{"x": 1}"#, None, &limits, &all),
            Decoded::Value(to_proto(json!({"x": 1})))
        );
        let Decoded::Error(reason) = decode(b"plain text", None, &limits, &all) else {
            panic!("text decoded");
        };
        assert!(reason.contains("not JSON"), "{reason}");
        let Decoded::Error(reason) = decode(&[b' '; 101], None, &limits, &all) else {
            panic!("a large value decoded");
        };
        assert!(reason.contains("--max-decode-bytes"), "{reason}");
    }

    #[test]
    fn encoded_fields_are_what_prost_writes_for_the_record() {
        for decoded in [
            Decoded::Value(to_proto(json!({"amount": 5}))),
            Decoded::Error("nope".into()),
        ] {
            let mut record = streamgate::proto::Record::default();
            decoded.clone().set_on(&mut record);
            let mut ours = Vec::new();
            decoded.encode_fields(&mut ours);
            assert_eq!(ours, record.encode_to_vec());
        }
    }
}
