//! Publish-to-receive latency: the value of each record carries the run's id and its send
//! time, so the live subscriber of the same process measures receive time − send time on
//! one monotonic clock. The publisher paces itself to a steady `--rate`, because latency at
//! full load measures the queues, not the path.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use streamgate::proto::{PublishRequest, start_position};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::gateway::{failed, rejection, request};
use crate::plan::Plan;
use crate::read::{open, records_of};
use crate::stats::Tally;
use crate::{Client, Failure};

/// How long the subscriber waits for the last records once everything is published.
pub const DRAIN: Duration = Duration::from_secs(30);

/// The send stamp a value starts with: which run, and when, on the run's clock.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    run: u64,
    origin: Instant,
}

impl Stamp {
    /// A stamp for a new run whose clock starts now.
    pub fn new() -> Self {
        Self {
            run: rand_id(),
            origin: Instant::now(),
        }
    }

    /// A value of `size` bytes (at least 16) sent now.
    pub fn value(&self, size: usize) -> Vec<u8> {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut value = Vec::with_capacity(size);
        value.extend_from_slice(&self.run.to_le_bytes());
        value.extend_from_slice(&nanos.to_le_bytes());
        value.resize(size.max(16), b'x');
        value
    }

    /// The latency of a received value, or `None` for a record of another run or writer.
    pub fn latency(&self, value: &[u8]) -> Option<Duration> {
        let run = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
        let nanos = u64::from_le_bytes(value.get(8..16)?.try_into().ok()?);
        (run == self.run).then(|| {
            self.origin
                .elapsed()
                .saturating_sub(Duration::from_nanos(nanos))
        })
    }
}

/// A run id that differs between runs: the time and the process id, mixed.
fn rand_id() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now.rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// When the `sent`-th record is due, at `rate` records per second from `start`.
pub fn due(start: Instant, sent: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(sent as f64 / rate)
}

/// The e2e workload through streamgate: a subscriber at latest, then `plan.records`
/// records over one PublishStream at `plan.rate`.
pub async fn run(client: &Client, plan: &Plan, tally: &Tally) -> Result<(), Failure> {
    let stamp = Stamp::new();
    let position = start_position::Position::Latest(true);
    let mut stream = open(client, &plan.topic, position, None).await?;
    let (records, reader_tally) = (plan.records, tally.clone());
    let reader = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            let Some(message) = message?.message else {
                continue;
            };
            // Records of other writers to the topic are not counted.
            let ours = records_of(&message)
                .iter()
                .filter_map(|record| stamp.latency(record.value.as_deref().unwrap_or_default()));
            for latency in ours {
                reader_tally.received(latency);
            }
            // Failed publishes will not arrive: they count as errors, not as records.
            if reader_tally.records() + reader_tally.errors() >= records {
                break;
            }
        }
        Ok::<(), Failure>(())
    });
    let stop_reader = reader.abort_handle();
    let published = publish_paced(client.clone(), plan, stamp, tally).await;
    let received = tokio::time::timeout(DRAIN, reader).await;
    stop_reader.abort();
    published?;
    match received {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(Failure::refused(format!("the e2e subscriber failed: {e}"))),
        Err(_) => {
            let missing = records.saturating_sub(tally.records() + tally.errors());
            for _ in 0..missing {
                tally.error("NOT_RECEIVED");
            }
            Ok(())
        }
    }
}

async fn publish_paced(
    mut client: Client,
    plan: &Plan,
    stamp: Stamp,
    tally: &Tally,
) -> Result<(), Failure> {
    let (requests, requests_rx) = mpsc::channel::<PublishRequest>(1024);
    let (topic, size, records, rate) = (plan.topic.clone(), plan.size, plan.records, plan.rate);
    let feeder = tokio::spawn(async move {
        let start = Instant::now();
        for sent in 0..records {
            tokio::time::sleep_until(due(start, sent, rate).into()).await;
            let value = Bytes::from(stamp.value(size));
            if requests.send(request(&topic, value)).await.is_err() {
                break;
            }
        }
    });
    let mut results = client
        .publish_stream(ReceiverStream::new(requests_rx))
        .await?
        .into_inner();
    let outcome = async {
        while let Some(result) = results.next().await {
            // The subscriber counts the records that arrive; only failures count here.
            if let Some(status) = rejection(result?) {
                failed(tally, &status)?;
            }
        }
        Ok(())
    }
    .await;
    feeder.abort();
    outcome
}
