//! `streamgate subscribe`: a Subscribe stream printed one line (or one JSON object) per
//! record on standard output; where the stream starts goes to standard error, like kcat.

use std::io::Write;

use crate::interrupt::interruptible;
use crate::parse;
use futures::{FutureExt, StreamExt};
use streamgate::auth::BearerToken;
use streamgate::proto::{StartPosition, SubscribeRequest};
use tonic::transport::Channel;

use crate::Failure;
use crate::args::SubscribeArgs;
use crate::encoded::{self, Frame, SubscribeFrame};
use crate::output;

/// Runs the subcommand until the stream ends, `--count` records were printed, or Ctrl-C.
pub async fn run(channel: Channel, token: BearerToken, args: SubscribeArgs) -> Result<(), Failure> {
    let start = args
        .from
        .as_deref()
        .map(parse::start_position)
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
        // --json shows every field; a text line only some.
        read_mask: (!args.json).then(|| crate::line_mask_decoding(args.decode)),
        resume: Vec::new(),
        filter: args.filter.clone().unwrap_or_default(),
        decode: args.decode,
    };
    // Records stay encoded until printed: see `encoded`.
    let mut stream = encoded::subscribe(channel, token, request).await?;
    // Buffered, like kcat: one write per batch of lines rather than one per record, flushed
    // whenever the stream has nothing more ready, so a quiet topic's lines still show at once.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut printed = 0u64;
    loop {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => {
                out.flush().map_err(Failure::io)?;
                interruptible(stream.next()).await?
            }
        };
        let Some(message) = next else {
            return out.flush().map_err(Failure::io);
        };
        let records = match message?.frame {
            Some(Frame::Assignment(assignment)) => {
                out.flush().map_err(Failure::io)?;
                output::print_assignment(&assignment);
                continue;
            }
            Some(Frame::Records(batch)) => batch.records,
            Some(Frame::Record(record)) => vec![record],
            None => continue,
        };
        for record in &records {
            output::print_encoded(&mut out, record, args.json).map_err(Failure::io)?;
            printed += 1;
            if args.count.is_some_and(|count| printed >= count) {
                out.flush().map_err(Failure::io)?;
                return await_end(&mut stream).await;
            }
        }
    }
}

/// After the last wanted record, waits for the server to end the stream: with a group, the
/// server commits the delivered offsets before it does, so the next command of the group
/// continues exactly after this one. Bounded, so a stuck server cannot hang the command.
async fn await_end(stream: &mut tonic::Streaming<SubscribeFrame>) -> Result<(), Failure> {
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
