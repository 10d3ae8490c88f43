//! The variables a filter sees, for one record.

use std::collections::HashMap;

use cel::common::types::{CelBytes, CelInt, CelMap, CelMapKey, CelNull, CelString, CelTimestamp};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use super::Uses;

/// A Kafka record as a filter sees it, borrowed from the consumer's message.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp, in milliseconds since the Unix epoch, if it has one.
    pub timestamp_ms: Option<i64>,
    /// The record's key; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The record's headers in order, a header without a value as `None`.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// The variables of one evaluation.
///
/// Each is built when the record comes, only if the expression uses it, and
/// borrows the record's bytes rather than copying them; the interpreter then
/// borrows them from here (a resolver answers every lookup of a name, so
/// values built on each lookup would be built again and again inside a
/// comprehension).
pub(super) struct Activation<'a> {
    topic: CelString<'a>,
    partition: CelInt,
    offset: CelInt,
    timestamp: Option<CelTimestamp>,
    key: Option<Bytes<'a>>,
    headers: Option<CelMap<'a>>,
    value: Option<Box<dyn Val>>,
}

/// A key or a header value: a string when it is UTF-8, bytes otherwise.
enum Bytes<'a> {
    Str(CelString<'a>),
    Bytes(CelBytes<'a>),
}

impl<'a> Bytes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Bytes::Str(CelString::from(s)),
            Err(_) => Bytes::Bytes(CelBytes::from(bytes)),
        }
    }

    fn as_val(&self) -> &(dyn Val + 'a) {
        match self {
            Bytes::Str(s) => s,
            Bytes::Bytes(b) => b,
        }
    }

    fn into_val(self) -> Box<dyn Val + 'a> {
        match self {
            Bytes::Str(s) => Box::new(s),
            Bytes::Bytes(b) => Box::new(b),
        }
    }
}

impl<'a> Activation<'a> {
    /// The variables of `record`, with `value` (already in the interpreter's
    /// form, `None` for null) as `value`.
    pub(super) fn new(record: &RecordView<'a>, value: Option<Box<dyn Val>>, uses: Uses) -> Self {
        Activation {
            topic: CelString::from(record.topic),
            partition: CelInt::from(i64::from(record.partition)),
            offset: CelInt::from(record.offset),
            timestamp: record
                .timestamp_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| CelTimestamp::from(t.fixed_offset())),
            key: if uses.key {
                record.key.map(Bytes::new)
            } else {
                None
            },
            headers: uses.headers.then(|| headers(&record.headers)),
            value,
        }
    }
}

/// The headers as a map; a later header of the same name replaces an
/// earlier one, as Kafka's `lastHeader` does.
fn headers<'a>(headers: &[(&'a str, Option<&'a [u8]>)]) -> CelMap<'a> {
    let mut map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = HashMap::with_capacity(headers.len());
    for (name, value) in headers {
        let value = match value {
            Some(bytes) => Bytes::new(bytes).into_val(),
            None => Box::new(CelString::from("")),
        };
        map.insert(CelMapKey::from(*name), value);
    }
    CelMap::from(map)
}

static NULL: CelNull = CelNull;

impl VariableResolver for Activation<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let val: &'b (dyn Val + 'b) = match variable {
            "topic" => &self.topic,
            "partition" => &self.partition,
            "offset" => &self.offset,
            "timestamp" => match &self.timestamp {
                Some(t) => t,
                None => &NULL,
            },
            "key" => match &self.key {
                Some(key) => key.as_val(),
                None => &NULL,
            },
            "headers" => self.headers.as_ref()?,
            "value" => match &self.value {
                Some(value) => value.as_ref(),
                None => &NULL,
            },
            _ => return None,
        };
        Some(CowVal::Borrowed(val))
    }
}
