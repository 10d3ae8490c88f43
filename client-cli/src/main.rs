//! `streamgate`: the command-line client of a streamgate server — publish, subscribe and
//! list topics through the gateway, the way kcat does against Kafka.
//!
//! Exit codes: 0 success; 1 the server refused the request (its message is printed);
//! 2 bad command line; 3 the server or its Kafka cluster cannot be reached; 130 interrupted.

mod args;
mod output;
mod publish;
mod stats;
mod subscribe;
mod supplier;
mod topics;

use std::process::ExitCode;

use clap::Parser;
use streamgate::auth::BearerToken;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::args::{Cli, Command};

/// The gateway client every subcommand gets: sends the `--token`, if any, on each call.
pub type Client = EventGatewayClient<InterceptedService<Channel, BearerToken>>;

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The server answered with an error status.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code;
        let code = match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => 3,
            Code::Cancelled => 130,
            _ => 1,
        };
        let mut message = if status.message().is_empty() {
            format!("{:?}", status.code())
        } else {
            status.message().to_owned()
        };
        if status.code() == Code::Unauthenticated {
            message.push_str(" (pass --token or set STREAMGATE_TOKEN)");
        }
        Self {
            code,
            message: format!("{}: {message}", code_name(status.code())),
        }
    }

    /// A local problem (bad input file, bad flag value).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Writing the output failed (e.g. a closed pipe): nothing more to say.
    pub fn io(error: std::io::Error) -> Self {
        Self {
            code: if error.kind() == std::io::ErrorKind::BrokenPipe {
                0
            } else {
                1
            },
            message: error.to_string(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

fn code_name(code: tonic::Code) -> String {
    // SCREAMING_CASE like grpcurl and every gRPC doc.
    let debug = format!("{code:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

async fn connect(server: &str, token: Option<&str>) -> Result<Client, Failure> {
    let token = BearerToken::optional(token)
        .map_err(|e| Failure::usage(format!("--token / STREAMGATE_TOKEN: {e}")))?;
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| Failure::usage(format!("--server {server:?} is not a valid URL: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| Failure {
        code: 3,
        message: format!("cannot reach the streamgate server at {server}: {} (is it running? see --server / STREAMGATE_SERVER)", source_chain(&e)),
    })?;
    Ok(EventGatewayClient::with_interceptor(channel, token).max_decoding_message_size(usize::MAX))
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let client = connect(&cli.server, cli.token.as_deref()).await?;
        match cli.command {
            Command::Publish(args) => publish::run(client, args).await,
            Command::Subscribe(args) => subscribe::run(client, args).await,
            Command::Topics(args) => topics::run(client, args).await,
            Command::Supplier(args) => supplier::run(client, args).await,
            Command::Stats(args) => stats::run(client, args).await,
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if failure.code != 0 && !failure.message.is_empty() {
                eprintln!("streamgate: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
