//! The cost of the worker's restore: it reads only the R4 records that can still matter
//! (those written since the restore's horizon), not R4's whole history. Proven by counting
//! (`WorkerCounters::restore_records_read`), never by timing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use streamgate::proto::start_position;
use streamgate::time::to_millis;
use streamgate_server::testing::{ClientSettings, StatsRecord, Worker, WorkerCounters};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::analytics::{
    WINDOW, committed, counting, expected_counts, final_windows, finals, live_batch, now_ms,
    publish, summed, watch_finals, worker_settings,
};
use crate::support::{BrokerKind, TestServer, eventually, on_each_broker_with, random_name};

/// Stale R4 records written before the worker starts: a week of history — 200 000 of them.
/// On the real test broker (Tansu) a tenth: its high watermark grows by one per batch, so the
/// history must be written one record per batch there, at about a thousand records a second;
/// the assertions are the same (the restore reads none of it, however much there is).
fn stale_count(kind: BrokerKind) -> u64 {
    match kind {
        BrokerKind::Embedded => 200_000,
        BrokerKind::Real => 20_000,
    }
}

/// Pages of the stale records; the live events use other names.
const STALE_PREFIX: &str = "stale-";

/// What the restore may read beyond the records it has to: none is expected, this only
/// allows for the odd record out of timestamp order.
const SLACK: u64 = 10;

/// The part of the restore's horizon this test relies on: window + grace (3 s in
/// `worker_settings`) + the 30 s event skew. The restore reaches back further (its margin).
const HORIZON_AT_LEAST: i64 = WINDOW + 3_000 + 30_000;

/// Counts deliveries of the stale-history producer.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.ok
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes `stale_count(kind)` valid R4 records straight to `topic`: final counts of old windows, with
/// timestamps (the wall time R4 records carry) spread over the week before the last hour.
/// Returns how many were delivered.
fn write_stale_history(client: &ClientSettings, topic: &str, kind: BrokerKind) -> u64 {
    let producer: BaseProducer<Deliveries> = client
        .config(|c| {
            c.set("linger.ms", "50")
                .set("compression.type", "gzip")
                .set("batch.size", "1000000")
                .set("acks", "all");
            if kind == BrokerKind::Real {
                // Tansu's high watermark grows by one per batch, not per record (see
                // docs/testing.md): one record per batch there keeps the watermarks, and
                // with them the restore's search range, right.
                c.set("batch.num.messages", "1");
            } else {
                c.set("batch.num.messages", "10000");
            }
        })
        .create_with_context(Deliveries::default())
        .expect("producer");
    let week_ago = now_ms() - 7 * 24 * 3_600_000;
    for i in 0..stale_count(kind) {
        let i = i as i64;
        // Every 3 s over 6.9 days: the newest is more than an hour old.
        let ts = week_ago + i * 3_000;
        let start = ts.div_euclid(WINDOW) * WINDOW;
        let record = StatsRecord::new(
            format!("{STALE_PREFIX}{}", i % 50),
            start,
            start + WINDOW,
            (i % 3) as i32,
            0,
            1 + (i % 7) as u64,
            true,
        );
        let (key, value) = (record.key(), record.to_json());
        let mut attempt = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(value.as_slice())
            .timestamp(ts);
        loop {
            match producer.send(attempt) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: serve deliveries, then send again.
                    producer.poll(Duration::from_millis(100));
                    attempt = back;
                }
                Err((e, _)) => panic!("producing stale history: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("stale history flushed");
    let deliveries = producer.context();
    assert_eq!(
        deliveries.failed.load(Ordering::Relaxed),
        0,
        "every stale record delivered"
    );
    deliveries.ok.load(Ordering::Relaxed)
}

/// Waits until a worker has completed `n` restores.
async fn restored(worker: &Worker, n: u64) {
    let counters = worker.counters();
    // A liveness bound: a group join, then a timestamp search over 200 000 records, which on
    // a busy real broker (one fetch per probe) can take a while.
    eventually(
        Duration::from_secs(300),
        &format!("the worker is assigned and restores {n} time(s)"),
        async || {
            let done = counters.restores.load(Ordering::Relaxed);
            if done >= n { Ok(()) } else { Err(done) }
        },
    )
    .await;
}

/// (R4 records read by the restores, restores completed), in that order: the reads counted
/// belong to at most that many restores.
fn restore_cost(counters: &WorkerCounters) -> (u64, u64) {
    let read = counters.restore_records_read.load(Ordering::Relaxed);
    (read, counters.restores.load(Ordering::Relaxed))
}

/// Reads the whole stats topic (through Subscribe) until the final counts of the live
/// records reach `expected`; returns the live records with their Kafka timestamps and how
/// many stale ones were seen on the way.
async fn read_live(
    server: &TestServer,
    topic: &str,
    expected: &std::collections::BTreeMap<(String, i64), u64>,
    stale_expected: u64,
) -> (Vec<(i64, StatsRecord)>, u64) {
    let mut client = server.client().await;
    let request = crate::support::subscribe_request(
        topic,
        None,
        Some(start_position::Position::Earliest(true)),
    );
    let mut stream = client
        .subscribe(request)
        .await
        .expect("subscribe")
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut live, mut stale) = (Vec::new(), 0);
    let mut live_records = Vec::new();
    loop {
        let got = summed(&finals(&live_records));
        // R4's partitions interleave: read until both the live counts and the whole stale
        // history have been seen.
        if stale >= stale_expected
            && expected
                .iter()
                .all(|(k, v)| got.get(k).is_some_and(|c| c >= v))
        {
            return (live, stale);
        }
        // Read what is ready before checking again: the check is over every live record.
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, stream.next()).await else {
                panic!(
                    "final counts {expected:?} not reached; got {got:?} ({} live, {stale} stale records)",
                    live.len()
                );
            };
            let message = message.expect("stream open").expect("message");
            let mut any_live = false;
            for record in crate::support::records_of(message.message) {
                let parsed = StatsRecord::parse(record.value.as_deref().unwrap_or_default())
                    .expect("every R4 record parses");
                if parsed.page.starts_with(STALE_PREFIX) {
                    stale += 1;
                } else {
                    let ts = to_millis(&record.timestamp.expect("timestamp")).expect("valid");
                    live_records.push(parsed.clone());
                    live.push((ts, parsed));
                    any_live = true;
                }
            }
            // Check again after each live record, and once the whole stale history is in.
            if any_live || stale == stale_expected {
                break;
            }
        }
    }
}

/// Checks the final windows WatchPageStats shows against `expected`, for the newest window.
async fn check_watch(
    server: &TestServer,
    expected: &std::collections::BTreeMap<(String, i64), u64>,
) {
    let windows: BTreeSet<i64> = expected.keys().map(|(_, w)| *w).collect();
    let newest = *windows.last().expect("windows");
    let mut watch = watch_finals(server).await;
    let seen = final_windows(&mut watch, &[newest], Duration::from_secs(60)).await;
    for (start, pages) in seen {
        for (page, count) in pages {
            assert_eq!(
                Some(&count).filter(|c| **c > 0),
                expected.get(&(page.clone(), start)),
                "{page} at {start} in WatchPageStats"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_reads_the_recent_history_not_the_whole_topic() {
    let (input, output) = (random_name("rc-in"), random_name("rc-out"));
    on_each_broker_with(counting(&input, &output, 3_000, None), |server| {
        let (input, output) = (input.clone(), output.clone());
        async move {
            crate::support::init_logs();
            let group = random_name("rc-g");
            let client_settings = server.kafka.client_settings();
            let (settings, topic, kind) = (client_settings.clone(), output.clone(), server.kind);
            let stale = stale_count(server.kind);
            let written =
                tokio::task::spawn_blocking(move || write_stale_history(&settings, &topic, kind))
                    .await
                    .expect("stale history");
            assert_eq!(written, stale, "R4 holds the stale history");

            // A worker assigned with only stale history in R4 reads (next to) nothing of it.
            let stop_first = CancellationToken::new();
            let first = Worker::spawn(
                client_settings.clone(),
                worker_settings(&input, &output, &group),
                stop_first.clone(),
            )
            .expect("worker 1");
            restored(&first, 1).await;
            let (read_first, restores_first) = restore_cost(&first.counters());
            eprintln!(
                "restore cost: {read_first} R4 records read in {restores_first} restore(s), R4 holding {stale} stale records"
            );
            assert!(
                read_first <= SLACK * restores_first,
                "the first restore read {read_first} records in {restores_first} restore(s) of {stale} stale ones"
            );

            // Counting is exact after a restore that skipped the history.
            let mut client = server.client().await;
            let pages = ["P1", "P2", "Accueil"];
            let mut inputs = Vec::new();
            for seed in 0..2 {
                let batch = live_batch(&pages, 200, seed == 0, seed);
                publish(
                    &mut client,
                    batch.iter().map(|i| i.request(&input)).collect(),
                )
                .await;
                inputs.extend(batch);
            }
            let expected = expected_counts(&inputs);
            let (live, stale_seen) = read_live(&server, &output, &expected, stale).await;
            assert_eq!(stale_seen, stale, "the stale history is still in R4");
            let got = summed(&finals(&live.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()));
            assert_eq!(got, expected, "final counts equal the input exactly");
            check_watch(&server, &expected).await;
            committed(&first, 1).await;
            stop_first.cancel();
            tokio::task::spawn_blocking(move || first.join())
                .await
                .expect("worker 1 stops");

            // A restore after a little live history reads that history — what a restore of an
            // R4 holding only the last minute would read — and none of the stale records.
            let stop_second = CancellationToken::new();
            let second = Worker::spawn(
                client_settings,
                worker_settings(&input, &output, &group),
                stop_second.clone(),
            )
            .expect("worker 2");
            restored(&second, 1).await;
            let after = now_ms();
            let (read_second, restores_second) = restore_cost(&second.counters());
            let live_total = live.len() as u64;
            let must_read = live
                .iter()
                .filter(|(ts, _)| *ts >= after - HORIZON_AT_LEAST)
                .count() as u64;
            eprintln!(
                "restore cost: {read_second} R4 records read in {restores_second} restore(s); live history {live_total} records ({must_read} within the horizon), stale {stale}"
            );
            assert!(
                read_second >= must_read,
                "the restore reads every record written within its horizon: {read_second} < {must_read}"
            );
            assert!(
                read_second <= restores_second * (live_total + SLACK),
                "the restore reads only the live history: {read_second} records in {restores_second} restore(s), {live_total} live"
            );
            assert!(read_second < 1_000 * restores_second, "far fewer than R4 holds");

            // And counting goes on exactly.
            let batch = live_batch(&pages, 200, false, 7);
            publish(
                &mut client,
                batch.iter().map(|i| i.request(&input)).collect(),
            )
            .await;
            inputs.extend(batch);
            let expected = expected_counts(&inputs);
            let (live, _) = read_live(&server, &output, &expected, 0).await;
            let got = summed(&finals(&live.into_iter().map(|(_, r)| r).collect::<Vec<_>>()));
            assert_eq!(got, expected, "final counts equal the input exactly");
            check_watch(&server, &expected).await;

            stop_second.cancel();
            tokio::task::spawn_blocking(move || second.join())
                .await
                .expect("worker 2 stops");
            server.stop().await;
        }
    })
    .await;
}
