//! `streamgate`: the command-line client of a streamgate server — publish, subscribe and
//! list topics through the gateway, the way kcat does against Kafka. (The load generator is
//! a program of its own, `streamgate-bench`, in `bench/`.)
//!
//! Exit codes ([`Exit`]): 0 success; 1 the server refused the request (its message is
//! printed); 2 bad command line; 3 the server or its Kafka cluster cannot be reached;
//! 130 interrupted.

mod args;
mod consume;
mod encoded;
mod health;
mod output;
mod publish;
mod stats;
mod subscribe;
mod supplier;
mod topics;

use std::process::ExitCode;

use clap::Parser;
use streamgate_cli::connect::gateway;
use tonic_health::pb::health_client::HealthClient;

use crate::args::{Cli, Command};
use streamgate_cli::{Client, Exit, Failure};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let (channel, token) = cli.connection.open().await?;
        match cli.command {
            Command::Publish(args) => publish::run(gateway(channel, token), args).await,
            Command::Subscribe(args) => subscribe::run(channel, token, args).await,
            Command::Consume(args) => consume::run(gateway(channel, token), args).await,
            Command::Topics(args) => topics::run(gateway(channel, token), args).await,
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
