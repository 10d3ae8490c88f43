//! `streamgate`: the command-line client of a streamgate server — publish, subscribe and
//! list topics through the gateway, the way kcat does against Kafka. (The load generator is
//! a program of its own, `streamgate-bench`, in `bench/`.) The binary (`src/main.rs`) only
//! calls [`run`]; everything else lives here.
//!
//! - [`run`] parses the command line ([`args`](mod@args)) and hands over to one module per
//!   subcommand: `publish`, `subscribe`, `consume`, `topics`, `supplier`, `stats`,
//!   `health`; `output` and `encoded` print records;
//! - `admin` runs the AdminService subcommands (`topics create|delete|describe|alter-config`,
//!   `groups`), printed as tables (`table`) or as canonical proto3 JSON (`proto_json`).
//!
//! What the load generator `streamgate-bench` (`bench/`) and the fuzz targets
//! (`server/fuzz/`) share with it is public:
//! - [`parse`]: the pure parsers of flag values (fuzzed);
//! - [`connect`]: the global connection flags ([`Connection`]: `--server`, `--token`, the
//!   TLS flags) and the gateway [`Client`] they open;
//! - [`failure`]: the exit codes ([`Exit`]) and the [`Failure`] a command ends with;
//! - [`interrupt`]: Ctrl-C as exit code 130;
//! - [`line_mask`]: the fields of a record that a printed line shows.
//!
//! Exit codes ([`Exit`]): 0 success; 1 the server refused the request (its message is
//! printed); 2 bad command line; 3 the server or its Kafka cluster cannot be reached;
//! 130 interrupted.

mod admin;
mod args;
pub mod connect;
mod consume;
mod encoded;
pub mod failure;
mod health;
pub mod interrupt;
mod json_value;
mod output;
pub mod parse;
mod proto_json;
mod publish;
mod stats;
mod subscribe;
mod supplier;
mod table;
mod topics;

use std::process::ExitCode;

use tonic_health::pb::health_client::HealthClient;

use crate::args::{Cli, Command};
use crate::connect::gateway;
pub use connect::{Client, Connection};
pub use failure::{Exit, Failure};

/// The `streamgate` command: parses the process's arguments, runs the subcommand, and
/// returns the exit code.
#[tokio::main]
pub async fn run() -> ExitCode {
    let cli = Cli::parse_checked();
    let result = async {
        let (channel, token) = cli.connection.open().await?;
        match cli.command {
            Command::Publish(args) => publish::run(gateway(channel, token), args).await,
            Command::Subscribe(args) => subscribe::run(channel, token, args).await,
            Command::Consume(args) => consume::run(gateway(channel, token), args).await,
            Command::Topics(args) => topics::run(channel, token, args).await,
            Command::Groups(args) => admin::groups::run(admin::client(channel, token), args).await,
            Command::Supplier(args) => supplier::run(gateway(channel, token), args).await,
            Command::Stats(args) => stats::run(gateway(channel, token), args).await,
            Command::Health(args) => {
                health::run(HealthClient::with_interceptor(channel, token), args).await
            }
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report("streamgate"),
    }
}

/// The fields of `Record` a text line of `streamgate subscribe` shows, as a Subscribe
/// `read_mask`: the server then leaves out the rest, and does not parse headers it would not
/// need (as kcat asks librdkafka for headers only when its format shows them). The bench's
/// reader asks for the same, so that it measures what the CLI does.
pub fn line_mask() -> prost_types::FieldMask {
    line_mask_decoding(false)
}

/// [`line_mask`], plus the decoded value and why it did not decode when `decode`.
pub fn line_mask_decoding(decode: bool) -> prost_types::FieldMask {
    let mut mask = line_mask_fields();
    if decode {
        mask.paths
            .extend(["decoded", "decode_error"].map(String::from));
    }
    mask
}

fn line_mask_fields() -> prost_types::FieldMask {
    let fields = ["topic", "partition", "offset", "timestamp", "key", "value"];
    prost_types::FieldMask {
        paths: fields.map(String::from).to_vec(),
    }
}
