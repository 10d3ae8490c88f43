//! Record values as CEL values: built by the caller ([`value_from_json`],
//! [`value_from_bytes`], [`value_from_serialize`]), then handed to the
//! interpreter ([`into_val`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::{Key, Map};
use cel::{ExecutionError, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::EvalError;

/// The value of a record whose bytes are a JSON object or array, or `None`
/// for anything else (a scalar, invalid JSON, trailing bytes, nesting deeper
/// than 128 levels).
///
/// Integers that fit an `i64` become `int`, larger ones `uint`, the others
/// `double`; `null` is `null`. When an object repeats a key, the last wins.
/// It deserialises straight from the bytes, without an intermediate
/// `serde_json::Value`, as it runs for every record a filter sees.
pub fn value_from_json(bytes: &[u8]) -> Option<Value> {
    // Only documents: a bare number or string is more likely a value that
    // happens to parse as JSON than one meant as JSON.
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    // One check of the whole document is faster than serde_json's check of
    // each string.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = JsonValue.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// The value of a record as `bytes`, for a record that is neither JSON nor a
/// registered message.
pub fn value_from_bytes(bytes: &[u8]) -> Value {
    Value::Bytes(Arc::new(bytes.to_vec()))
}

/// The value of anything serialisable, e.g. a decoded protobuf message
/// (serialised with its 64-bit integers as numbers, not strings).
pub fn value_from_serialize<T: serde::Serialize>(value: &T) -> Result<Value, EvalError> {
    cel::to_value(value).map_err(|error| EvalError::Value(error.to_string()))
}

/// The error for a record whose value is over the filter's `max_value_bytes`:
/// the caller does not decode such a value, and the record does not match.
pub fn value_too_large(len: usize) -> EvalError {
    EvalError::ValueTooLarge { len }
}

/// Moves `value` into the interpreter's representation.
///
/// Unlike cel's own conversion, which copies a map's entries, it takes the
/// strings, lists and maps over where nothing else shares them, as they are
/// when they come from the builders above.
pub(super) fn into_val(value: Value) -> Result<Box<dyn Val>, ExecutionError> {
    Ok(match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(b)),
        Value::Int(i) => Box::new(CelInt::from(i)),
        Value::UInt(u) => Box::new(CelUInt::from(u)),
        Value::Float(f) => Box::new(CelDouble::from(f)),
        Value::String(s) => Box::new(CelString::from(Arc::unwrap_or_clone(s))),
        Value::Bytes(b) => Box::new(CelBytes::from(Arc::unwrap_or_clone(b))),
        Value::List(list) => Box::new(CelList::from(
            Arc::unwrap_or_clone(list)
                .into_iter()
                .map(into_val)
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Map(map) => {
            let map = Arc::unwrap_or_clone(map.map);
            let mut entries = HashMap::with_capacity(map.len());
            for (key, value) in map {
                entries.insert(CelMapKey::from(key), into_val(value)?);
            }
            Box::new(CelMap::from(entries))
        }
        // Timestamps, durations and the rarer kinds: cel's conversion.
        other => Box::<dyn Val>::try_from(other)?,
    })
}

/// The entries an object's table is first made for.
const SMALL_OBJECT: usize = 7;

/// Deserialises any JSON value into a [`Value`].
struct JsonValue;

impl<'de> DeserializeSeed<'de> for JsonValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        // serde_json hands every non-negative integer over as a u64.
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(Arc::new(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(Arc::new(v)))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(JsonValue)? {
            items.push(item);
        }
        Ok(Value::List(Arc::new(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // serde_json gives no size hint; most records' objects are small,
        // and growing a table rehashes it.
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(SMALL_OBJECT).min(1024));
        while let Some(key) = map.next_key_seed(JsonKey)? {
            let value = map.next_value_seed(JsonValue)?;
            entries.insert(key, value);
        }
        Ok(Value::Map(Map {
            map: Arc::new(entries),
        }))
    }
}

/// Deserialises an object's key into a map [`Key`].
struct JsonKey;

impl<'de> DeserializeSeed<'de> for JsonKey {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for JsonKey {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key::String(Arc::new(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key, E> {
        Ok(Key::String(Arc::new(v)))
    }
}
