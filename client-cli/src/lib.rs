//! The library half of the `streamgate` command-line client: what its binary
//! (`src/main.rs`) shares with the load generator `streamgate-bench` (`bench/`) and the fuzz
//! targets (`server/fuzz/`):
//!
//! - [`parse`]: the pure parsers of flag values (fuzzed);
//! - [`connect`]: the global connection flags ([`Connection`]: `--server`, `--token`, the
//!   TLS flags) and the gateway [`Client`] they open;
//! - [`failure`]: the exit codes ([`Exit`]) and the [`Failure`] a command ends with;
//! - [`interrupt`]: Ctrl-C as exit code 130;
//! - [`line_mask`]: the fields of a record that a printed line shows.
//!
//! The subcommands themselves stay in the binary.

pub mod connect;
pub mod failure;
pub mod interrupt;
pub mod parse;

pub use connect::{Client, Connection};
pub use failure::{Exit, Failure};

/// The fields of `Record` a text line of `streamgate subscribe` shows, as a Subscribe
/// `read_mask`: the server then leaves out the rest, and does not parse headers it would not
/// need (as kcat asks librdkafka for headers only when its format shows them). The bench's
/// reader asks for the same, so that it measures what the CLI does.
pub fn line_mask() -> prost_types::FieldMask {
    let fields = ["topic", "partition", "offset", "timestamp", "key", "value"];
    prost_types::FieldMask {
        paths: fields.map(String::from).to_vec(),
    }
}
