//! Analytics under attack: records stamped far in the future on every partition, a page name
//! far beyond the limit, more distinct pages than a window may hold, and a panic inside the
//! worker. None of them stops, freezes or skews the counts of the rest.
//!
//! Each scenario runs a worker of its own (as the exactly-once tests do) on topics of its own,
//! publishing straight to the broker with explicit timestamps, and reads R4 and the
//! dead-letter topic with plain consumers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use streamgate::page_event::PageEvent;
use streamgate_server::testing::{StatsRecord, Worker, WorkerSettings, panics};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::analytics::worker_settings;
use crate::support::{TestServer, eventually, on_each_broker, random_name};

const WINDOW: i64 = 5_000;
/// 2100-01-01T00:00:00Z.
const YEAR_2100: i64 = 4_102_444_800_000;

fn tile(ts: i64) -> i64 {
    ts.div_euclid(WINDOW) * WINDOW
}

/// A window start ten minutes ago: its windows close by the clock within seconds.
fn past_window() -> i64 {
    tile(chrono::Utc::now().timestamp_millis() - 600_000)
}

/// Topics of one scenario, the worker's settings, and a running worker.
struct Scenario {
    input: String,
    output: String,
    dead_letters: String,
    partitions: i32,
    settings: WorkerSettings,
    shutdown: CancellationToken,
}

impl Scenario {
    async fn new(server: &TestServer, partitions: i32) -> Self {
        let (input, output) = (server.topic(partitions).await, server.topic(1).await);
        let group = random_name("att-g");
        let settings = worker_settings(&input, &output, &group);
        let dead_letters = settings.dead_letters.as_str().to_owned();
        server
            .kafka
            .ensure_topics(&[&dead_letters], 1, 1, Duration::from_secs(30))
            .await
            .expect("dead-letter topic");
        server.wait_for_topic(&dead_letters, 1).await;
        Self {
            input,
            output,
            dead_letters,
            partitions,
            settings,
            shutdown: CancellationToken::new(),
        }
    }

    fn spawn(&self, server: &TestServer) -> Worker {
        Worker::spawn(
            server.kafka.client_settings(),
            self.settings.clone(),
            self.shutdown.clone(),
        )
        .expect("worker")
    }

    async fn stop(&self, worker: Worker) {
        self.shutdown.cancel();
        tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("the worker stops");
    }
}

/// One record for R2: partition, page, timestamp (duration 500 ms: kept by the filter).
fn event(page: &str, ts: i64) -> Vec<u8> {
    PageEvent {
        name: page.to_owned().into(),
        user: "U1".into(),
        date_ms: ts,
        duration_ms: 500,
    }
    .to_json()
}

fn producer(server: &TestServer) -> FutureProducer {
    let mut config: ClientConfig = server.kafka.client_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Publishes `(partition, timestamp, value)` straight to `topic`, in order, each acked.
async fn publish_raw(server: &TestServer, topic: &str, records: &[(i32, i64, Vec<u8>)]) {
    let producer = producer(server);
    let mut deliveries = Vec::with_capacity(records.len());
    for (partition, ts, value) in records {
        let record = FutureRecord::<(), _>::to(topic)
            .partition(*partition)
            .payload(value.as_slice())
            .timestamp(*ts);
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((e, _)) => panic!("queueing a record: {e}"),
        }
    }
    for delivery in deliveries {
        crate::support::within(Duration::from_secs(60), "a delivery", delivery)
            .await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("acked");
    }
}

/// Reads every partition of `topic` from the beginning until `done` holds for what was read,
/// or `within` passed (the caller's assertion then says what is missing).
async fn read_topic(
    server: &TestServer,
    topic: &str,
    partitions: i32,
    within: Duration,
    done: impl Fn(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = server
        .kafka
        .client_config()
        .set("group.id", random_name("att-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + within;
    let mut messages = Vec::new();
    while !done(&messages) {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => break,
        }
    }
    messages
}

/// R4's final counts, per key the final record with the highest input offset.
fn final_counts(messages: &[OwnedMessage]) -> BTreeMap<String, StatsRecord> {
    let mut out: BTreeMap<String, StatsRecord> = BTreeMap::new();
    for record in messages
        .iter()
        .filter_map(|m| StatsRecord::parse(m.payload().unwrap_or_default()))
        .filter(|r| r.is_final)
    {
        let key = record.key();
        if out
            .get(&key)
            .is_none_or(|r| record.input_offset >= r.input_offset)
        {
            out.insert(key, record);
        }
    }
    out
}

/// Waits until R4 has a final record for every key of `expected`, then checks the counts.
async fn assert_final_counts(
    server: &TestServer,
    scenario: &Scenario,
    expected: &BTreeMap<String, u64>,
) -> Vec<OwnedMessage> {
    let messages = read_topic(
        server,
        &scenario.output,
        1,
        Duration::from_secs(90),
        |messages| {
            let finals = final_counts(messages);
            expected.keys().all(|k| finals.contains_key(k))
        },
    )
    .await;
    let got: BTreeMap<String, u64> = final_counts(&messages)
        .into_iter()
        .map(|(k, r)| (k, r.count))
        .collect();
    assert_eq!(&got, expected, "final counts in R4");
    messages
}

fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Waits until `counter` of the worker reaches `n`.
async fn counter_reaches(worker: &Worker, name: &str, n: u64, read: fn(&Worker) -> u64) {
    eventually(
        Duration::from_secs(60),
        &format!("the worker's {name} reaches {n}"),
        async || {
            let seen = read(worker);
            if seen >= n { Ok(()) } else { Err(seen) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_the_year_2100_neither_stop_time_nor_count() {
    on_each_broker(|server| async move {
        let scenario = Scenario::new(&server, 3).await;
        let t0 = past_window();
        // Three records stamped 2100 on every partition, then normal events.
        let mut records = Vec::new();
        for partition in 0..scenario.partitions {
            for _ in 0..3 {
                records.push((partition, YEAR_2100, event("Future", YEAR_2100)));
            }
        }
        let mut expected = BTreeMap::new();
        for partition in 0..scenario.partitions {
            for (i, page) in ["A", "B", "A", "C", "A"].iter().enumerate() {
                let ts = t0 + 1_000 + i as i64 * 500;
                records.push((partition, ts, event(page, ts)));
                *expected
                    .entry(format!("{page}@{t0}@{partition}"))
                    .or_insert(0) += 1;
            }
            // One in the next window too: the first one closes by stream time.
            let ts = t0 + WINDOW + 100;
            records.push((partition, ts, event("B", ts)));
            expected.insert(format!("B@{}@{partition}", t0 + WINDOW), 1);
        }
        let worker = scenario.spawn(&server);
        publish_raw(&server, &scenario.input, &records).await;

        let r4 = assert_final_counts(&server, &scenario, &expected).await;
        assert!(
            r4.iter()
                .filter_map(|m| StatsRecord::parse(m.payload().unwrap_or_default()))
                .all(|r| r.window_end_ms < YEAR_2100 / 2 && r.page != "Future"),
            "nothing of the year 2100 in R4"
        );
        let counters = worker.counters();
        assert_eq!(counters.future.load(Ordering::Relaxed), 9);
        assert_eq!(counters.late.load(Ordering::Relaxed), 0, "nothing late");

        let letters = read_topic(
            &server,
            &scenario.dead_letters,
            1,
            Duration::from_secs(60),
            |m| m.len() >= 9,
        )
        .await;
        let mut origins: Vec<(String, String)> = letters
            .iter()
            .map(|letter| {
                assert_eq!(
                    header(letter, "x-original-topic").as_deref(),
                    Some(scenario.input.as_str())
                );
                assert_eq!(
                    header(letter, "x-original-timestamp"),
                    Some(YEAR_2100.to_string())
                );
                let reason = header(letter, "x-exception-message").expect("a reason");
                assert!(reason.contains("ahead of the worker's clock"), "{reason}");
                assert_eq!(
                    letter.payload(),
                    Some(event("Future", YEAR_2100).as_slice()),
                    "the original value"
                );
                (
                    header(letter, "x-original-partition").expect("partition"),
                    header(letter, "x-original-offset").expect("offset"),
                )
            })
            .collect();
        origins.sort();
        let want: Vec<(String, String)> = (0..scenario.partitions)
            .flat_map(|p| (0..3).map(move |o| (p.to_string(), o.to_string())))
            .collect();
        assert_eq!(origins, want, "each future record dead-lettered once");
        assert_eq!(counters.restarts.load(Ordering::Relaxed), 0);
        scenario.stop(worker).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_600_kb_page_name_is_dead_lettered_and_counting_goes_on() {
    on_each_broker(|server| async move {
        let scenario = Scenario::new(&server, 1).await;
        let t0 = past_window();
        let huge = "x".repeat(600 * 1024);
        let records = vec![
            (0, t0 + 1_000, event("A", t0 + 1_000)),
            (0, t0 + 1_500, event(&huge, t0 + 1_500)),
            (0, t0 + 2_000, event("A", t0 + 2_000)),
            (0, t0 + 2_500, event("B", t0 + 2_500)),
            (0, t0 + WINDOW + 100, event("B", t0 + WINDOW + 100)),
        ];
        let worker = scenario.spawn(&server);
        publish_raw(&server, &scenario.input, &records).await;

        let expected: BTreeMap<String, u64> = [
            (format!("A@{t0}@0"), 2),
            (format!("B@{t0}@0"), 1),
            (format!("B@{}@0", t0 + WINDOW), 1),
        ]
        .into_iter()
        .collect();
        let r4 = assert_final_counts(&server, &scenario, &expected).await;
        assert!(
            r4.iter()
                .all(|m| m.payload().is_some_and(|p| p.len() < 4096)),
            "no huge R4 record"
        );
        let letters = read_topic(
            &server,
            &scenario.dead_letters,
            1,
            Duration::from_secs(60),
            |m| !m.is_empty(),
        )
        .await;
        assert_eq!(letters.len(), 1, "one dead letter");
        let letter = &letters[0];
        assert_eq!(letter.payload(), Some(records[1].2.as_slice()));
        assert_eq!(header(letter, "x-original-offset").as_deref(), Some("1"));
        let reason = header(letter, "x-exception-message").expect("a reason");
        assert!(
            reason.contains("the page name has 614400 bytes"),
            "{reason}"
        );
        let counters = worker.counters();
        assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.dead_letters.load(Ordering::Relaxed), 1);
        assert_eq!(counters.restarts.load(Ordering::Relaxed), 0, "no restart");
        scenario.stop(worker).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_junk_pages_fill_one_window_and_the_rest_counts_as_other() {
    on_each_broker(|server| async move {
        let mut scenario = Scenario::new(&server, 1).await;
        scenario.settings.max_pages = 100;
        let t0 = past_window();
        let mut records: Vec<(i32, i64, Vec<u8>)> = (0..20_000)
            .map(|i| (0, t0 + 1_000, event(&format!("junk-{i}"), t0 + 1_000)))
            .collect();
        for page in ["A", "A", "B", "A", "B", "A", "A"] {
            let ts = t0 + WINDOW + 500;
            records.push((0, ts, event(page, ts)));
        }
        let worker = scenario.spawn(&server);
        publish_raw(&server, &scenario.input, &records).await;

        let mut expected: BTreeMap<String, u64> =
            (0..100).map(|i| (format!("junk-{i}@{t0}@0"), 1)).collect();
        expected.insert(format!("(other)@{t0}@0"), 19_900);
        expected.insert(format!("A@{}@0", t0 + WINDOW), 5);
        expected.insert(format!("B@{}@0", t0 + WINDOW), 2);
        assert_final_counts(&server, &scenario, &expected).await;
        let counters = worker.counters();
        assert_eq!(counters.counted.load(Ordering::Relaxed), 20_007);
        assert_eq!(counters.restarts.load(Ordering::Relaxed), 0);
        scenario.stop(worker).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_worker_is_caught_and_the_worker_counts_on() {
    on_each_broker(|server| async move {
        let scenario = Scenario::new(&server, 1).await;
        let t0 = past_window();
        let worker = scenario.spawn(&server);
        let first: Vec<_> = (0..10)
            .map(|i| (0, t0 + 100 * i, event("A", t0 + 100 * i)))
            .collect();
        publish_raw(&server, &scenario.input, &first).await;
        counter_reaches(&worker, "counted", 10, |w| {
            w.counters().counted.load(Ordering::Relaxed)
        })
        .await;
        let before = panics();
        worker.inject_panic();
        counter_reaches(&worker, "restarts", 1, |w| {
            w.counters().restarts.load(Ordering::Relaxed)
        })
        .await;
        assert!(panics() > before, "the panic is counted");
        let transactions = worker.counters().transactions.load(Ordering::Relaxed);
        let second: Vec<_> = (0..7)
            .map(|i| {
                let ts = t0 + WINDOW + 100 * i;
                (0, ts, event("B", ts))
            })
            .collect();
        publish_raw(&server, &scenario.input, &second).await;
        // The restarted run commits again, and every count is exact across the panic.
        counter_reaches(&worker, "transactions", transactions + 1, |w| {
            w.counters().transactions.load(Ordering::Relaxed)
        })
        .await;
        let expected: BTreeMap<String, u64> = [
            (format!("A@{t0}@0"), 10),
            (format!("B@{}@0", t0 + WINDOW), 7),
        ]
        .into_iter()
        .collect();
        assert_final_counts(&server, &scenario, &expected).await;
        assert_eq!(worker.counters().restarts.load(Ordering::Relaxed), 1);
        scenario.stop(worker).await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_transaction_always_fails_costs_a_bounded_number_of_restarts() {
    on_each_broker(|server| async move {
        let scenario = Scenario::new(&server, 1).await;
        let t0 = past_window();
        // Not a PageEvent, and so big that its dead letter exceeds the worker's producer's
        // message.max.bytes (1 MB): every transaction holding it fails, however often the
        // worker restarts.
        let big = vec![b'x'; 1_200_000];
        let mut records = vec![
            (0, t0 + 1_000, event("A", t0 + 1_000)),
            (0, t0 + 1_500, big),
            (0, t0 + 2_000, event("A", t0 + 2_000)),
        ];
        records.push((0, t0 + WINDOW + 100, event("B", t0 + WINDOW + 100)));
        let producer: FutureProducer = server
            .kafka
            .client_config()
            .set("message.max.bytes", "4000000")
            .create()
            .expect("producer");
        let worker = scenario.spawn(&server);
        for (partition, ts, value) in &records {
            producer
                .send(
                    FutureRecord::<(), _>::to(&scenario.input)
                        .partition(*partition)
                        .payload(value.as_slice())
                        .timestamp(*ts),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("acked");
        }
        let counters = worker.counters();
        eventually(
            // Up to five restarts with the backoff (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s), each with
            // a group join and a restore.
            Duration::from_secs(150),
            "the record is passed over",
            async || {
                if counters.skipped.load(Ordering::Relaxed) >= 1 {
                    Ok(())
                } else {
                    Err(format!("{counters:?}"))
                }
            },
        )
        .await;
        let expected: BTreeMap<String, u64> = [
            (format!("A@{t0}@0"), 2),
            (format!("B@{}@0", t0 + WINDOW), 1),
        ]
        .into_iter()
        .collect();
        assert_final_counts(&server, &scenario, &expected).await;
        let restarts = worker.counters().restarts.load(Ordering::Relaxed);
        // Three failures to isolate it, one for its own transaction, one for its dead letter.
        assert!(
            (1..=5).contains(&restarts),
            "bounded restarts for one record: {restarts}"
        );
        scenario.stop(worker).await;
        server.stop().await;
    })
    .await;
}
