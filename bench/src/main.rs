//! `streamgate-bench`: a load generator for a streamgate server, like Kafka's producer and
//! consumer perf-test scripts. It runs one workload (publish, publish-stream, subscribe, e2e)
//! through streamgate over gRPC, Connect or Server-Sent Events (`--protocol`) and, with
//! `--direct`, the same workload straight on Kafka right after (librdkafka), or with
//! `--compare-protocol` the same workload over another protocol, or for subscribe with
//! `--compare-filter` the same read through another filter ([`scan`]), and prints both with
//! their ratio; `--rounds N` alternates the two N times and reports the median round. `--server-pid` reads a local server's CPU and memory from
//! /proc (else they come from the server's `/metrics`).
//!
//! A program of its own so that the `streamgate` CLI does not link librdkafka; it shares the
//! CLI's connection flags, exit codes and flag parsers through the `streamgate_cli` library.
//!
//! Memory stays bounded whatever `--records`: records are counted and latencies go into HDR
//! histograms ([`stats`]); no record or sample is kept.
//!
//! Exit codes ([`Exit`](streamgate_cli::Exit)): 0 success; 1 the server refused a request (its message is
//! printed); 2 bad command line; 3 the server, its Kafka cluster or `--direct` cannot be
//! reached; 130 interrupted.

mod args;
mod connect;
mod direct;
mod e2e;
mod gateway;
mod plan;
mod progress;
mod read;
mod report;
mod run;
mod scan;
mod server;
mod sse;
mod stats;
mod values;
mod web;

use std::process::ExitCode;

use clap::Parser;
use streamgate::auth::BearerToken;
use streamgate::proto::admin_service_client::AdminServiceClient;
use streamgate_cli::connect::gateway;
use streamgate_cli::{Client, Failure};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::args::Cli;

/// The server's AdminService, for creating the bench's topic.
type Admin = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        // A flag that does not fit the workload is refused before any connection is made.
        let plan = plan::Plan::new(&cli.bench)?;
        let (channel, token) = cli.connection.open().await?;
        // The server's own CPU and memory, over the same connection, unless --server-pid.
        let probe = server::Probe::Metrics(channel.clone(), cli.connection.token.clone());
        // Connect and SSE requests, over the same connection too.
        let web = web::Web::new(channel.clone(), cli.connection.token.as_deref())?;
        let admin = AdminServiceClient::with_interceptor(channel.clone(), token.clone());
        run::run(gateway(channel, token), admin, web, probe, plan, cli.bench).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report("streamgate-bench"),
    }
}
