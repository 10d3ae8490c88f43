//! JSON values as `google.protobuf.Value`, both ways: a value published as JSON
//! (`publish --value-json`) and a decoded value received (`subscribe --decode`).

use prost_types::value::Kind;
use serde_json::Value;

/// `json` as a `google.protobuf.Value` (numbers become doubles, as that type holds them).
pub fn to_proto(json: Value) -> prost_types::Value {
    let kind = match json {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_proto).collect(),
        }),
        Value::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_proto(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `google.protobuf.Value` as JSON, whole numbers written as integers (`1200`, not
/// `1200.0`) when a double holds them exactly.
pub fn from_proto(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => Value::Array(list.values.iter().map(from_proto).collect()),
        Some(Kind::StructValue(object)) => Value::Object(
            object
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), from_proto(v)))
                .collect(),
        ),
    }
}

fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // Integral and within ±2^53: the cast is exact.
        return Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trips_with_whole_numbers_as_integers() {
        let value = json!({"id": "o-1", "amount": 1200, "rate": 0.5, "tags": ["a", null, true]});
        assert_eq!(from_proto(&to_proto(value.clone())), value);
        assert_eq!(from_proto(&to_proto(json!(1e300))), json!(1e300));
    }
}
