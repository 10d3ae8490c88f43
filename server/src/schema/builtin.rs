//! The schemas of the topics the server itself writes: PageEvent JSON on R2 and R3, count
//! records on R4. They are JSON Schema documents (`builtin/*.schema.json`), compiled once per
//! process and shared by every [`super::Schemas`] built after.

use std::sync::{Arc, OnceLock};

use super::json_schema::JsonSchema;

/// The PageEvent JSON of R2 and R3 (`streamgate::page_event`).
pub(super) const PAGE_EVENT: &str = include_str!("builtin/page_event.schema.json");

/// The count records of R4 (`analytics::record::StatsRecord`).
pub(super) const STATS_RECORD: &str = include_str!("builtin/stats_record.schema.json");

/// What [`super::TopicSchema::source`] says of a built-in schema.
pub(super) const SOURCE: &str = "built-in";

fn compiled(cell: &'static OnceLock<Arc<JsonSchema>>, text: &'static str) -> Arc<JsonSchema> {
    Arc::clone(cell.get_or_init(|| {
        // The documents are part of the build, and a test compiles both.
        Arc::new(
            JsonSchema::compile(text)
                .unwrap_or_else(|e| unreachable!("built-in JSON Schema does not compile: {e:?}")),
        )
    }))
}

/// The compiled PageEvent schema.
pub(super) fn page_event() -> Arc<JsonSchema> {
    static CELL: OnceLock<Arc<JsonSchema>> = OnceLock::new();
    compiled(&CELL, PAGE_EVENT)
}

/// The compiled R4 record schema.
pub(super) fn stats_record() -> Arc<JsonSchema> {
    static CELL: OnceLock<Arc<JsonSchema>> = OnceLock::new();
    compiled(&CELL, STATS_RECORD)
}
