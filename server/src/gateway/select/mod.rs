//! What a Subscribe or Consume stream does with each record beyond its read mask: the
//! stream's CEL filter (records it rejects are not sent, and count as handled) and, when
//! asked, the value decoded as JSON by its topic's schema.
//!
//! - [`Selection`] is the request's part, checked and compiled once when the stream opens
//!   (a bad filter is the call's INVALID_ARGUMENT);
//! - [`Selector`] is the stream's part: the selection plus the schema of each of its
//!   topics, taken when the stream opened — a schema reload never changes an open stream;
//! - [`decoded`] turns a decoded value into the API's `google.protobuf.Value`, keeping only
//!   the paths a read mask names inside it.

pub mod decoded;

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::message::{Headers, Message};

use self::decoded::{Decoded, DecodedPaths};
use crate::filter::{self, Filter, FilterValue, RecordView};
use crate::gateway::error::GatewayError;
use crate::metrics::RecordMetrics;
use crate::schema::{DecodeLimits, Format, Schemas, TopicSchema};

/// The limits on filters and decoding, from the server's flags.
#[derive(Debug, Clone, Copy)]
pub struct ValueLimits {
    /// Filter size and cost (`--max-filter-bytes`, `--max-filter-cost`) and the largest
    /// value a filter looks into (`--max-filter-value-bytes`).
    pub filter: filter::Limits,
    /// Largest value decoded and largest decoded JSON (`--max-decode-bytes`,
    /// `--max-decoded-json-bytes`).
    pub decode: DecodeLimits,
}

/// The filter and decoding a stream asked for, checked.
#[derive(Clone, Default)]
pub struct Selection {
    filter: Option<Arc<Filter>>,
    decode: bool,
    paths: DecodedPaths,
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selection")
            .field("filter", &self.filter.as_ref().map(|f| f.source()))
            .field("decode", &self.decode)
            .finish()
    }
}

impl Selection {
    /// Compiles `filter` (empty: none); `decode` asks for decoded values, and so does a
    /// read mask naming paths inside them (`decoded_paths`, without the `decoded.` prefix).
    pub fn new(
        filter: &str,
        decode: bool,
        decoded_paths: DecodedPaths,
        limits: &filter::Limits,
    ) -> Result<Self, GatewayError> {
        let filter = if filter.is_empty() {
            None
        } else {
            let compiled = Filter::compile(filter, limits).map_err(|e| match e {
                // The server's trouble (no thread for the compiler), not the filter's.
                filter::CompileError::Unavailable(_) => GatewayError::Capacity(e.to_string()),
                _ => GatewayError::InvalidArgument(e.to_string()),
            })?;
            Some(Arc::new(compiled))
        };
        Ok(Self {
            filter,
            decode: decode || !decoded_paths.is_all(),
            paths: decoded_paths,
        })
    }

    /// Whether every record is sent as it is: no filter and no decoding.
    pub fn is_passthrough(&self) -> bool {
        self.filter.is_none() && !self.decode
    }
}

/// What to do with one record.
pub enum Verdict {
    /// The filter left it out: advance past it without sending it.
    Skip,
    /// Send it, with its decoded value when the stream asked for one.
    Send(Option<Decoded>),
}

/// A stream's selection with the schemas of its topics as they were when it opened.
pub struct Selector {
    selection: Selection,
    schemas: HashMap<String, Option<Arc<TopicSchema>>>,
    limits: ValueLimits,
    metrics: RecordMetrics,
}

impl Selector {
    /// The selector of a stream reading `topics`, with their schemas from `schemas`.
    pub fn new<'t>(
        selection: Selection,
        topics: impl IntoIterator<Item = &'t str>,
        schemas: &Schemas,
        limits: ValueLimits,
        metrics: RecordMetrics,
    ) -> Self {
        let schemas = topics
            .into_iter()
            .map(|t| (t.to_owned(), schemas.for_topic(t)))
            .collect();
        Self {
            selection,
            schemas,
            limits,
            metrics,
        }
    }

    /// Whether every record is sent as it is.
    pub fn is_passthrough(&self) -> bool {
        self.selection.is_passthrough()
    }

    /// Judges one record: filters it, and decodes its value if the stream asked for it.
    pub fn judge<M: Message>(&self, message: &M) -> Verdict {
        let schema = self.schemas.get(message.topic()).and_then(|s| s.as_deref());
        if let Some(filter) = &self.selection.filter {
            match self.evaluate(filter, message, schema) {
                Ok(true) => {}
                // Counted with the stream's records (`streamgate_records_filtered`).
                Ok(false) => return Verdict::Skip,
                Err(error) => {
                    tracing::debug!(%error, topic = message.topic(), offset = message.offset(), "filter could not be evaluated; the record does not match");
                    self.metrics.filter_error();
                    return Verdict::Skip;
                }
            }
        }
        if !self.selection.decode {
            return Verdict::Send(None);
        }
        Verdict::Send(message.payload().map(|value| {
            decoded::decode(value, schema, &self.limits.decode, &self.selection.paths)
        }))
    }

    fn evaluate<M: Message>(
        &self,
        filter: &Filter,
        message: &M,
        schema: Option<&TopicSchema>,
    ) -> Result<bool, filter::EvalError> {
        let timestamp_ms = message.timestamp().to_millis();
        // Asked only when used: librdkafka parses (and allocates) a record's headers on
        // every call (8 % of a filtered stream's time when it was asked always).
        let headers = if filter.uses_headers() {
            message
                .headers()
                .map(|headers| headers.iter().map(|h| (h.key, h.value)).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let view = RecordView {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms,
            key: message.key(),
            headers,
        };
        let value = match message.payload() {
            Some(bytes) if filter.uses_value() => {
                FilterValue::Value(filter_value(bytes, schema, &self.limits)?)
            }
            _ => FilterValue::Absent,
        };
        filter.matches(&view, value)
    }
}

/// The `value` a filter sees: decoded by the topic's schema, or parsed when it is JSON, or
/// the bytes.
fn filter_value(
    bytes: &[u8],
    schema: Option<&TopicSchema>,
    limits: &ValueLimits,
) -> Result<cel::Value, filter::EvalError> {
    if bytes.len() > limits.filter.max_value_bytes {
        return Err(filter::value_too_large(bytes.len()));
    }
    match schema {
        Some(schema) if matches!(schema.format(), Format::Protobuf) => {
            let decoded = schema
                .decode_for_filter(bytes, &limits.decode)
                .map_err(|e| filter::EvalError::Value(e.to_string()))?;
            filter::value_from_serialize(&decoded)
        }
        _ => Ok(filter::value_from_json(bytes).unwrap_or_else(|| filter::value_from_bytes(bytes))),
    }
}
