//! `streamgate`: the command-line client of a streamgate server — publish, subscribe and
//! list topics through the gateway, the way kcat does against Kafka.
//!
//! Exit codes: 0 success; 1 the server refused the request (its message is printed);
//! 2 bad command line; 3 the server or its Kafka cluster cannot be reached; 130 interrupted.

mod args;
mod bench;
mod connect;
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
use streamgate::auth::BearerToken;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::args::{Cli, Command};
use crate::connect::TlsOptions;

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
        // TLS 1.3 lets a client finish its handshake before the server has checked the
        // client's certificate: a refusal then arrives as the first call's error.
        if let Some(tls) = connect::tls_failure(status) {
            return Self::unreachable(format!("TLS: the server refused the connection: {tls}"));
        }
        // A status tonic made from a transport error (one the server sent has no source): the
        // connection broke under the call, e.g. a TLS server that refused the client's
        // certificate and closed before its alert was read.
        if let (Code::Unknown | Code::Cancelled, Some(source)) =
            (status.code(), std::error::Error::source(status))
        {
            return Self::unreachable(format!(
                "the connection to the server broke: {} (over TLS: does the server want a client certificate? see --tls-cert)",
                source_chain(source)
            ));
        }
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

    /// Exit with `code` and nothing more to say (the output said it).
    pub fn silent(code: u8) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }

    /// The server cannot be reached (exit code 3).
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
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

/// The EventGateway client over `channel`.
fn gateway(channel: Channel, token: BearerToken) -> Client {
    EventGatewayClient::with_interceptor(channel, token).max_decoding_message_size(usize::MAX)
}

async fn connect(
    server: &str,
    tls: &TlsOptions,
    token: Option<&str>,
) -> Result<(Channel, BearerToken), Failure> {
    let token = BearerToken::optional(token)
        .map_err(|e| Failure::usage(format!("--token / STREAMGATE_TOKEN: {e}")))?;
    Ok((connect::channel(server, tls).await?, token))
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
        let (channel, token) =
            connect(&cli.server, &cli.tls_options(), cli.token.as_deref()).await?;
        match cli.command {
            Command::Publish(args) => publish::run(gateway(channel, token), args).await,
            Command::Subscribe(args) => subscribe::run(channel, token, args).await,
            Command::Consume(args) => consume::run(gateway(channel, token), args).await,
            Command::Topics(args) => topics::run(gateway(channel, token), args).await,
            Command::Supplier(args) => supplier::run(gateway(channel, token), args).await,
            Command::Stats(args) => stats::run(gateway(channel, token), args).await,
            Command::Bench(args) => {
                let probe = bench::server::Probe::Metrics(channel.clone(), cli.token.clone());
                bench::run(gateway(channel, token), probe, args).await
            }
            Command::Health(args) => {
                health::run(HealthClient::with_interceptor(channel, token), args).await
            }
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
