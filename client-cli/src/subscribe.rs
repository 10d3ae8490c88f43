//! `streamgate subscribe`: a Subscribe stream printed one line (or one JSON object) per
//! record on standard output; where the stream starts goes to standard error, like kcat.

use futures::StreamExt;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{StartPosition, SubscribeRequest, start_position, subscribe_response};
use streamgate::time;
use tonic::transport::Channel;

use crate::Failure;
use crate::args::SubscribeArgs;
use crate::output;

/// Runs the subcommand until the stream ends, `--count` records were printed, or Ctrl-C.
pub async fn run(
    mut client: EventGatewayClient<Channel>,
    args: SubscribeArgs,
) -> Result<(), Failure> {
    let start = args
        .from
        .as_deref()
        .map(parse_start)
        .transpose()
        .map_err(Failure::usage)?;
    let request = SubscribeRequest {
        topics: args.topics.clone(),
        group: args.group.clone(),
        start: start.map(|position| StartPosition {
            position: Some(position),
        }),
        stop_at_end: args.exit_at_end,
        max_records: args.count,
    };
    let mut stream = client.subscribe(request).await?.into_inner();
    let mut printed = 0u64;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tokio::signal::ctrl_c() => return Err(Failure { code: 130, message: String::new() }),
        };
        let Some(message) = next else { return Ok(()) };
        match message?.message {
            Some(subscribe_response::Message::Assignment(assignment)) => {
                output::print_assignment(&assignment)
            }
            Some(subscribe_response::Message::Record(record)) => {
                output::print_record(&record, args.json).map_err(Failure::io)?;
                printed += 1;
                if args.count.is_some_and(|count| printed >= count) {
                    return await_end(&mut stream).await;
                }
            }
            None => {}
        }
    }
}

/// After the last wanted record, waits for the server to end the stream: with a group, the
/// server commits the delivered offsets before it does, so the next command of the group
/// continues exactly after this one. Bounded, so a stuck server cannot hang the command.
async fn await_end(
    stream: &mut tonic::Streaming<streamgate::proto::SubscribeResponse>,
) -> Result<(), Failure> {
    let drain = async {
        while let Some(message) = stream.next().await {
            message?;
        }
        Ok::<(), tonic::Status>(())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(15), drain).await {
        Ok(result) => result.map_err(Failure::from),
        Err(_) => {
            eprintln!(
                "streamgate: the server did not confirm the end of the stream; offsets may not be committed yet"
            );
            Ok(())
        }
    }
}

/// Parses `--from`: earliest | latest | N | -N | @RFC3339 | @EPOCH_MILLIS.
pub fn parse_start(text: &str) -> Result<start_position::Position, String> {
    use start_position::Position;
    match text {
        "earliest" | "beginning" => return Ok(Position::Earliest(true)),
        "latest" | "end" => return Ok(Position::Latest(true)),
        _ => {}
    }
    if let Some(time) = text.strip_prefix('@') {
        let millis = match time.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => chrono::DateTime::parse_from_rfc3339(time)
                .map_err(|e| {
                    format!("--from {text:?}: not an RFC 3339 time or epoch milliseconds ({e})")
                })?
                .timestamp_millis(),
        };
        return Ok(Position::Timestamp(time::from_millis(millis)));
    }
    match text.parse::<i64>() {
        Ok(n) if n < 0 => Ok(Position::FromEnd(-n)),
        Ok(n) => Ok(Position::Offset(n)),
        Err(_) => Err(format!(
            "--from {text:?}: expected earliest, latest, OFFSET, -N or @TIME"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use start_position::Position;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse_start("earliest"), Ok(Position::Earliest(true)));
        assert_eq!(parse_start("latest"), Ok(Position::Latest(true)));
        assert_eq!(parse_start("42"), Ok(Position::Offset(42)));
        assert_eq!(parse_start("-3"), Ok(Position::FromEnd(3)));
        assert_eq!(
            parse_start("@1000"),
            Ok(Position::Timestamp(prost_types::Timestamp {
                seconds: 1,
                nanos: 0
            }))
        );
        assert_eq!(
            parse_start("@1970-01-01T00:00:02.5Z"),
            Ok(Position::Timestamp(prost_types::Timestamp {
                seconds: 2,
                nanos: 500_000_000
            }))
        );
        assert!(parse_start("soon").is_err());
        assert!(parse_start("@yesterday").is_err());
    }
}
