//! `streamgate consume`: a Consume stream (acknowledged consumption in a consumer group).
//! Each record is printed — or handed to `--exec CMD` — and acknowledged only after that
//! succeeded: after standard output was flushed, or after CMD exited 0 (otherwise the record
//! is nacked and comes back). A record the command never finished with is never acknowledged,
//! so stopping it at any moment (Ctrl-C, a closed pipe, a kill) loses nothing: the group gets
//! those records again.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;

use crate::parse;
use futures::StreamExt;
use streamgate::proto::{
    AckRequest, ConsumeRequest, ConsumeResponse, ConsumeStart, ConsumedRecord, NackRequest,
    StartPosition, consume_request, consume_response,
};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::args::ConsumeArgs;
use crate::output;
use crate::{Client, Failure};

/// How long to wait for the server to confirm the end of the stream (its final commit).
const END_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the subcommand until the server ends the stream, `--count` records were handled,
/// or Ctrl-C / SIGTERM.
pub async fn run(mut client: Client, args: ConsumeArgs) -> Result<(), Failure> {
    // Registered before the stream opens, so an early Ctrl-C still ends it cleanly.
    let mut interrupt = Interrupt::register()?;
    let (requests, outgoing) = mpsc::channel(64);
    // The receiver is alive and the channel empty: this cannot fail.
    let _ = requests.send(start_request(&args)?).await;
    let mut stream = client
        .consume(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let mut session = Session {
        requests,
        args: &args,
        out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        handled: 0,
    };
    loop {
        let message = tokio::select! {
            biased;
            () = interrupt.recv() => return finish(session.requests, stream, Err(Failure::interrupted())).await,
            message = stream.next() => message,
        };
        let Some(message) = message else {
            return Ok(());
        };
        match message?.message {
            Some(consume_response::Message::Assignment(assignment)) => {
                output::print_assignment(&assignment);
            }
            Some(consume_response::Message::Records(batch)) => {
                let stop = session.handle(batch.records, &mut interrupt).await;
                if let Some(result) = stop {
                    return finish(session.requests, stream, result).await;
                }
            }
            None => {}
        }
    }
}

/// The first request: what to read, and the pacing flags.
fn start_request(args: &ConsumeArgs) -> Result<ConsumeRequest, Failure> {
    let start = args
        .from
        .as_deref()
        .map(parse::start_position)
        .transpose()
        .map_err(Failure::usage)?;
    let ack_deadline = args
        .ack_deadline
        .map(prost_types::Duration::try_from)
        .transpose()
        .map_err(|e| Failure::usage(format!("--ack-deadline: {e}")))?;
    Ok(ConsumeRequest {
        request: Some(consume_request::Request::Start(ConsumeStart {
            group: args.group.clone(),
            topics: args.topics.clone(),
            start: start.map(|position| StartPosition {
                position: Some(position),
            }),
            max_outstanding_records: args.max_outstanding.unwrap_or(0),
            ack_deadline,
            max_delivery_attempts: args.max_delivery_attempts.unwrap_or(0),
            filter: args.filter.clone().unwrap_or_default(),
            decode: args.decode,
        })),
    })
}

/// The open stream's client side: where records go, and how many were handled.
struct Session<'a> {
    requests: mpsc::Sender<ConsumeRequest>,
    args: &'a ConsumeArgs,
    out: std::io::BufWriter<std::io::Stdout>,
    handled: u64,
}

impl Session<'_> {
    /// Handles one delivered batch (up to what `--count` still wants) and acknowledges what
    /// was handled. `Some` when the command should stop, with its result.
    async fn handle(
        &mut self,
        records: Vec<ConsumedRecord>,
        interrupt: &mut Interrupt,
    ) -> Option<Result<(), Failure>> {
        let wanted = self
            .args
            .count
            .map_or(u64::MAX, |count| count - self.handled);
        let take = records
            .len()
            .min(usize::try_from(wanted).unwrap_or(usize::MAX));
        let result = match &self.args.exec {
            Some(command) => self.execute(command, &records[..take], interrupt).await,
            None => self.print(&records[..take]).await,
        };
        if let Err(failure) = result {
            return Some(Err(failure));
        }
        if interrupt.received() {
            return Some(Err(Failure::interrupted()));
        }
        if self.args.count.is_some_and(|count| self.handled >= count) {
            return Some(Ok(()));
        }
        None
    }

    /// Prints the records, flushes standard output, then acknowledges them all.
    async fn print(&mut self, records: &[ConsumedRecord]) -> Result<(), Failure> {
        let mut ack_ids = Vec::with_capacity(records.len());
        for consumed in records {
            let Some(record) = &consumed.record else {
                continue;
            };
            output::print_consumed(
                &mut self.out,
                record,
                consumed.delivery_attempt,
                self.args.json,
            )
            .map_err(Failure::io)?;
            ack_ids.push(consumed.ack_id.clone());
        }
        // Acknowledged only once the lines left this process: a closed pipe acks nothing.
        self.out.flush().map_err(Failure::io)?;
        self.handled += records.len() as u64;
        self.send_ack(ack_ids).await;
        Ok(())
    }

    /// Runs the command once per record; acks each record whose command exited 0, nacks the
    /// others. Stops early at Ctrl-C (the rest of the batch stays unacknowledged).
    async fn execute(
        &mut self,
        command: &str,
        records: &[ConsumedRecord],
        interrupt: &mut Interrupt,
    ) -> Result<(), Failure> {
        for consumed in records {
            if interrupt.received() {
                return Ok(());
            }
            let succeeded = match &consumed.record {
                Some(record) => run_command(command, record, consumed, interrupt).await?,
                None => true,
            };
            self.handled += 1;
            if succeeded {
                self.send_ack(vec![consumed.ack_id.clone()]).await;
            } else {
                self.send_nack(vec![consumed.ack_id.clone()]).await;
            }
        }
        Ok(())
    }

    async fn send_ack(&self, ack_ids: Vec<String>) {
        if ack_ids.is_empty() {
            return;
        }
        let ack = consume_request::Request::Ack(AckRequest { ack_ids });
        // A closed stream ends the command with the server's status just after; the records
        // of a lost ack come back to the group, which is the guarantee.
        let _ = self
            .requests
            .send(ConsumeRequest { request: Some(ack) })
            .await;
    }

    async fn send_nack(&self, ack_ids: Vec<String>) {
        let delay = prost_types::Duration::try_from(self.args.nack_delay).ok();
        let nack = consume_request::Request::Nack(NackRequest { ack_ids, delay });
        let _ = self
            .requests
            .send(ConsumeRequest {
                request: Some(nack),
            })
            .await;
    }
}

/// Runs `sh -c COMMAND` with the record's value on standard input; true if it exited 0.
/// A first interrupt lets the command finish (its record is then acked or nacked as usual);
/// a second one kills it and stops at once.
async fn run_command(
    command: &str,
    record: &streamgate::proto::Record,
    consumed: &ConsumedRecord,
    interrupt: &mut Interrupt,
) -> Result<bool, Failure> {
    let mut process = tokio::process::Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .env("STREAMGATE_TOPIC", &record.topic)
        .env("STREAMGATE_PARTITION", record.partition.to_string())
        .env("STREAMGATE_OFFSET", record.offset.to_string())
        .env(
            "STREAMGATE_DELIVERY_ATTEMPT",
            consumed.delivery_attempt.to_string(),
        )
        .stdin(Stdio::piped())
        .kill_on_drop(true);
    match record.key.as_deref() {
        // An environment variable cannot hold a NUL byte: such a key is left out.
        Some(key) if !key.contains(&0) => {
            process.env("STREAMGATE_KEY", OsStr::from_bytes(key));
        }
        _ => {
            process.env_remove("STREAMGATE_KEY");
        }
    }
    let mut child = process
        .spawn()
        .map_err(|e| Failure::usage(format!("--exec: cannot run sh: {e}")))?;
    let mut stdin = child.stdin.take();
    let value = record.value.clone().unwrap_or_default();
    let feed = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A command that does not read its input closes the pipe: not an error.
            let _ = stdin.write_all(&value).await;
        }
        drop(stdin);
    };
    let (status, ()) = tokio::join!(wait_for(&mut child, interrupt), feed);
    Ok(status?.success())
}

async fn wait_for(
    child: &mut tokio::process::Child,
    interrupt: &mut Interrupt,
) -> Result<std::process::ExitStatus, Failure> {
    loop {
        tokio::select! {
            status = child.wait() => return status.map_err(|e| Failure::usage(format!("--exec: {e}"))),
            () = interrupt.recv() => {
                if interrupt.count > 1 {
                    let _ = child.kill().await;
                    return Err(Failure::interrupted());
                }
            }
        }
    }
}

/// Ends the stream from this side (half-close): the server commits what was acknowledged and
/// ends the stream with OK. Bounded, so a stuck server cannot hang the command.
async fn finish(
    requests: mpsc::Sender<ConsumeRequest>,
    mut stream: tonic::Streaming<ConsumeResponse>,
    result: Result<(), Failure>,
) -> Result<(), Failure> {
    drop(requests);
    let drain = async {
        // Records still arriving are not handled: they stay unacknowledged for the group.
        while let Some(message) = stream.next().await {
            message?;
        }
        Ok::<(), tonic::Status>(())
    };
    match tokio::time::timeout(END_TIMEOUT, drain).await {
        Ok(Ok(())) => result,
        Ok(Err(status)) => result.and(Err(status.into())),
        Err(_) => {
            eprintln!(
                "streamgate: the server did not confirm the end of the stream; the group may get some acknowledged records again"
            );
            result
        }
    }
}

/// SIGINT and SIGTERM, counted.
struct Interrupt {
    int: Signal,
    term: Signal,
    count: u32,
}

impl Interrupt {
    fn register() -> Result<Self, Failure> {
        let register = |kind| signal(kind).map_err(|e| Failure::usage(format!("signals: {e}")));
        Ok(Self {
            int: register(SignalKind::interrupt())?,
            term: register(SignalKind::terminate())?,
            count: 0,
        })
    }

    /// Waits for the next signal.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        self.count += 1;
    }

    /// Whether a signal has arrived (including one not yet waited for).
    fn received(&mut self) -> bool {
        use futures::FutureExt;
        if self.count == 0 {
            let _ = self.recv().now_or_never();
        }
        self.count > 0
    }
}
