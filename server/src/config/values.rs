//! The flags of typed values: the per-topic schema file, and the bounds on stream filters
//! and on decoding. Flattened into [`super::Config`]: the command line is one.

use std::path::PathBuf;

use clap::Args;

/// See the module.
#[derive(Debug, Clone, Args)]
pub struct ValueFlags {
    /// Per-topic schemas (TOML: a topic name or glob → a Protobuf message from a descriptor
    /// set, or a JSON Schema; docs/schemas.md): Publish checks values against them, Subscribe
    /// and Consume decode with them. Re-read on SIGHUP. The server's own topics (R2, R3, R4)
    /// have built-in schemas with or without it.
    #[arg(long, env = "STREAMGATE_SCHEMAS", value_name = "FILE")]
    pub schemas: Option<PathBuf>,

    /// Longest filter expression a Subscribe or Consume stream may give, in bytes.
    #[arg(long, env = "STREAMGATE_MAX_FILTER_BYTES", default_value_t = 4096)]
    pub max_filter_bytes: usize,

    /// Most work a filter may do on one record, as the server estimates it when the stream
    /// opens (units: about one step per expression node, times the value's size for steps
    /// that scan it, times the elements a list may have inside a comprehension).
    #[arg(long, env = "STREAMGATE_MAX_FILTER_COST", default_value_t = 1_000_000)]
    pub max_filter_cost: u64,

    /// Largest value a filter decodes and looks into, in bytes; a larger record does not
    /// match a filter that reads `value` (and is counted as a filter error).
    #[arg(long, env = "STREAMGATE_MAX_FILTER_VALUE_BYTES", default_value_t = 1024 * 1024)]
    pub max_filter_value_bytes: usize,

    /// Largest value decoded for a stream that asked for decoded values, in bytes; a larger
    /// one is sent raw, with the reason.
    #[arg(long, env = "STREAMGATE_MAX_DECODE_BYTES", default_value_t = 1024 * 1024)]
    pub max_decode_bytes: usize,

    /// Largest JSON one value may decode to, in bytes (a small Protobuf value can stand for
    /// a much larger JSON one); past it the value is sent raw, with the reason.
    #[arg(long, env = "STREAMGATE_MAX_DECODED_JSON_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_decoded_json_bytes: usize,
}
