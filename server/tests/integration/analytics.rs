//! Analytics: exact windowed counts (grace, lateness, the duration filter, a quiet page) in R4
//! and through WatchPageStats; exactly-once across worker crashes; two servers splitting R2;
//! many watchers and a slow one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use streamgate::page_event::PageEvent;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{
    self, PageStats, WatchPageStatsRequest, publish_request, publish_result, start_position,
};
use streamgate::time::{from_millis, to_millis};
use streamgate_server::Settings;
use streamgate_server::settings::WindowSpec;
use streamgate_server::testing::{Abandon, StatsRecord, Worker, WorkerSettings};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::support::{
    BrokerKind, TestServer, eventually, on_each_broker_with, random_name, subscribe_request,
    topic_name, within,
};

pub(crate) const WINDOW: i64 = 5_000;

/// One input event: partition (None: let the key decide), key, page, timestamp, duration.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    partition: Option<i32>,
    key: Option<String>,
    page: String,
    ts: i64,
    duration: i64,
}

impl Input {
    fn new(page: &str, ts: i64, duration: i64) -> Self {
        Self {
            partition: None,
            key: Some(page.to_owned()),
            page: page.to_owned(),
            ts,
            duration,
        }
    }

    fn on(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub(crate) fn request(&self, topic: &str) -> proto::PublishRequest {
        let value = PageEvent {
            name: self.page.clone().into(),
            user: "U1".into(),
            date_ms: self.ts,
            duration_ms: self.duration,
        }
        .to_json();
        proto::PublishRequest {
            topic: topic.to_owned(),
            key: self.key.clone().map(Bytes::from),
            partition: self.partition,
            timestamp: Some(from_millis(self.ts)),
            payload: Some(publish_request::Payload::Value(Bytes::from(value))),
            ..Default::default()
        }
    }
}

/// Publishes over one PublishStream and checks every record was acknowledged.
pub(crate) async fn publish(
    client: &mut EventGatewayClient<Channel>,
    requests: Vec<proto::PublishRequest>,
) {
    let count = requests.len();
    let mut results = client
        .publish_stream(tokio_stream::iter(requests))
        .await
        .expect("publish stream")
        .into_inner();
    let mut acked = 0;
    while let Some(result) = within(
        Duration::from_secs(60),
        "the next publish result",
        results.next(),
    )
    .await
    {
        match result.expect("result").outcome {
            Some(publish_result::Outcome::Ack(_)) => acked += 1,
            other => panic!("record not acknowledged: {other:?}"),
        }
    }
    assert_eq!(acked, count);
}

/// The expected count per (page, window start) of the events the filter keeps.
pub(crate) fn expected_counts(inputs: &[Input]) -> BTreeMap<(String, i64), u64> {
    let mut counts = BTreeMap::new();
    for input in inputs.iter().filter(|i| i.duration > 100) {
        *counts
            .entry((input.page.clone(), input.ts.div_euclid(WINDOW) * WINDOW))
            .or_default() += 1;
    }
    counts
}

fn tile(ts: i64) -> i64 {
    ts.div_euclid(WINDOW) * WINDOW
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Collects final PageStats from a `final_only` watch until every window in `windows` was
/// seen, or fails after `within`. Returns window start → (page → count).
pub(crate) async fn final_windows(
    stream: &mut tonic::Streaming<PageStats>,
    windows: &[i64],
    within: Duration,
) -> BTreeMap<i64, BTreeMap<String, u64>> {
    let deadline = Instant::now() + within;
    let mut seen = BTreeMap::new();
    while !windows.iter().all(|w| seen.contains_key(w)) {
        let message = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("final windows {windows:?} not all seen; got {seen:?}"))
            .expect("stream open")
            .expect("message");
        assert!(message.r#final, "final_only sends final windows only");
        let start = to_millis(&message.window_start.expect("start")).expect("valid");
        let pages = message
            .pages
            .iter()
            .map(|p| (p.page.clone(), p.count))
            .collect();
        assert!(
            seen.insert(start, pages).is_none(),
            "window {start} sent twice"
        );
    }
    seen
}

/// Reads the stats topic until `done` says the records so far are enough.
async fn read_stats_until(
    server: &TestServer,
    topic: &str,
    within: Duration,
    done: impl Fn(&[StatsRecord]) -> bool,
) -> Vec<StatsRecord> {
    let mut client = server.client().await;
    let request = subscribe_request(topic, None, Some(start_position::Position::Earliest(true)));
    let mut stream = client
        .subscribe(request)
        .await
        .expect("subscribe")
        .into_inner();
    let deadline = Instant::now() + within;
    let mut records = Vec::new();
    loop {
        if done(&records) {
            return records;
        }
        let Ok(message) = tokio::time::timeout_at(deadline, stream.next()).await else {
            // Incomplete: the caller's assertion says what is missing.
            return records;
        };
        let message = message.expect("stream open").expect("message");
        for record in crate::support::records_of(message.message) {
            let parsed = StatsRecord::parse(record.value.as_deref().unwrap_or_default())
                .expect("every R4 record parses");
            assert_eq!(
                record.key.as_deref(),
                Some(parsed.key().as_bytes()),
                "key page@window_start_ms@partition"
            );
            records.push(parsed);
        }
    }
}

/// Per key, the final record with the highest input offset (a crashed worker's aborted
/// transaction may have left another one that the test brokers still show).
pub(crate) fn finals(records: &[StatsRecord]) -> HashMap<String, StatsRecord> {
    let mut out: HashMap<String, StatsRecord> = HashMap::new();
    for record in records.iter().filter(|r| r.is_final) {
        let key = record.key();
        if out
            .get(&key)
            .is_none_or(|r| record.input_offset >= r.input_offset)
        {
            out.insert(key, record.clone());
        }
    }
    out
}

/// Sums final records over partitions: (page, window start) → count.
pub(crate) fn summed(finals: &HashMap<String, StatsRecord>) -> BTreeMap<(String, i64), u64> {
    let mut out = BTreeMap::new();
    for record in finals.values() {
        *out.entry((record.page.clone(), record.window_start_ms))
            .or_default() += record.count;
    }
    out
}

pub(crate) async fn watch_finals(server: &TestServer) -> tonic::Streaming<PageStats> {
    server
        .client()
        .await
        .watch_page_stats(WatchPageStatsRequest {
            rolling: None,
            final_only: true,
        })
        .await
        .expect("watch")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_exactly_with_grace_lateness_filter_and_a_quiet_page() {
    let (input, output, group) = (
        random_name("an-in"),
        random_name("an-out"),
        random_name("an-g"),
    );
    let configure = counting(&input, &output, 10_000, Some(&group));
    on_each_broker_with(configure, |server| {
        let (input, output) = (input.clone(), output.clone());
        async move {
            let mut watch = watch_finals(&server).await;
            // Windows of 5 s from T0, ten minutes ago; grace 10 s: [T0, T0+5 s) is final once
            // its partition's stream time reaches T0 + 15 s.
            let t0 = tile(now_ms() - 600_000);
            let mut requests: Vec<proto::PublishRequest> = [
                Input::new("A", t0 + 1_000, 500),
                Input::new("B", t0 + 2_000, 500),
                Input::new("A", t0 + 3_000, 50), // filtered: duration <= 100 ms
                Input::new("A", t0 + 4_000, 500),
                Input::new("C", t0 + 7_000, 500),
                Input::new("A", t0 + 4_500, 500), // late, within grace: counted
                Input::new("C", t0 + 16_000, 500), // time T0+16 s: [T0, T0+5 s) is final
                Input::new("A", t0 + 3_500, 500), // late beyond grace: dropped
            ]
            .iter()
            .map(|i| i.clone().on(0).request(&input))
            .collect();
            let mut garbage = Input::new("x", t0, 0).on(0).request(&input);
            garbage.payload = Some(publish_request::Payload::Value(Bytes::from_static(
                b"not json",
            )));
            requests.push(garbage);
            // A page alone in its partition goes quiet: its window closes by the clock.
            requests.push(Input::new("Q", t0 + 1_000, 500).on(1).request(&input));
            let mut client = server.client().await;
            publish(&mut client, requests).await;

            let expected: BTreeMap<String, u64> = [
                (format!("A@{t0}@0"), 3),
                (format!("B@{t0}@0"), 1),
                (format!("Q@{t0}@1"), 1),
                (format!("C@{}@0", t0 + 5_000), 1),
                (format!("C@{}@0", t0 + 15_000), 1),
            ]
            .into_iter()
            .collect();
            let records = read_stats_until(&server, &output, Duration::from_secs(90), |records| {
                let finals = finals(records);
                expected.keys().all(|k| finals.contains_key(k))
            })
            .await;
            let got: BTreeMap<String, u64> = finals(&records)
                .into_iter()
                .map(|(k, r)| (k, r.count))
                .collect();
            assert_eq!(got, expected, "final counts in R4");
            for key in expected.keys() {
                let count = records
                    .iter()
                    .filter(|r| r.is_final && &r.key() == key)
                    .count();
                assert_eq!(count, 1, "exactly one final record for {key}");
            }
            assert!(
                records.iter().all(|r| r.count <= 3),
                "the late event beyond grace was never counted: {records:?}"
            );

            let windows = final_windows(
                &mut watch,
                &[t0, t0 + 5_000, t0 + 15_000],
                Duration::from_secs(60),
            )
            .await;
            let count = |w: i64, p: &str| windows[&w].get(p).copied();
            assert_eq!(
                (count(t0, "A"), count(t0, "B"), count(t0, "Q")),
                (Some(3), Some(1), Some(1))
            );
            // Every page seen so far is listed, zero when absent from the window.
            assert_eq!(count(t0 + 5_000, "C"), Some(1));
            assert_eq!(count(t0 + 5_000, "A"), Some(0));
            assert_eq!(count(t0 + 15_000, "C"), Some(1));

            // The transactions that wrote them show on /metrics, with the time they took.
            let page = crate::metrics::scrape(&server).await;
            let committed = crate::metrics::value(
                &page,
                "streamgate_analytics_transactions_total{outcome=\"committed\"}",
            );
            assert!(committed >= 1.0, "committed transactions: {committed}");
            let seconds =
                crate::metrics::value(&page, "streamgate_analytics_transaction_seconds_total");
            assert!(seconds > 0.0, "time in transactions: {seconds}");
            server.stop().await;
        }
    })
    .await;
}

pub(crate) fn worker_settings(input: &str, output: &str, group: &str) -> WorkerSettings {
    WorkerSettings {
        input: streamgate::topic::TopicName::new(input.to_owned()).expect("topic"),
        output: streamgate::topic::TopicName::new(output.to_owned()).expect("topic"),
        dead_letters: streamgate::topic::TopicName::new(format!("error.{input}.{group}"))
            .expect("topic"),
        group: group.to_owned(),
        // One id for every run, as a restarted server keeps its id: the next run's
        // init fences (and aborts) what the crashed one left open.
        transactional_id: format!("{group}-worker"),
        spec: WindowSpec::tumbling(WINDOW, 3_000).expect("spec"),
        min_duration_ms: 100,
        tick: Duration::from_millis(200),
        timeout: Duration::from_secs(20),
        max_event_skew: Duration::from_secs(30),
        max_page_name_bytes: 256,
        max_pages: 10_000,
        // A tenth of the server's: the restarts these tests cause are the point, not the
        // pause a real broker gets to recover.
        first_restart_backoff: Duration::from_millis(100),
    }
}

/// The settings of a server whose analytics count `input` into `output`, topics of its own:
/// the supplier stopped, tumbling windows of [`WINDOW`] with `grace_ms` of grace, a 200 ms
/// tick. Its worker runs in `worker_group` when one is given; without one it runs none (the
/// test spawns its own workers) and keeps the default group.
pub(crate) fn counting(
    input: &str,
    output: &str,
    grace_ms: i64,
    worker_group: Option<&str>,
) -> impl Fn(&mut Settings) + Clone + use<> {
    let (input, output) = (topic_name(input), topic_name(output));
    let worker_group = worker_group.map(str::to_owned);
    move |s| {
        s.supplier.running = false;
        s.supplier.settings.topic = input.clone();
        s.topics.stats = output.clone();
        s.analytics.spec = WindowSpec::tumbling(WINDOW, grace_ms).expect("spec");
        s.analytics.tick = Duration::from_millis(200);
        s.analytics.worker = worker_group.is_some();
        if let Some(group) = &worker_group {
            s.analytics.group = group.clone();
        }
    }
}

/// Waits until a worker has committed `n` transactions.
pub(crate) async fn committed(worker: &Worker, n: u64) {
    let counters = worker.counters();
    eventually(
        Duration::from_secs(60),
        &format!("the worker commits {n} transaction(s)"),
        async || {
            let done = counters
                .transactions
                .load(std::sync::atomic::Ordering::Relaxed);
            if done >= n { Ok(()) } else { Err(done) }
        },
    )
    .await;
}

/// The next message of a WatchPageStats stream, bounded.
async fn next_stats(stream: &mut tonic::Streaming<PageStats>) -> PageStats {
    within(
        Duration::from_secs(30),
        "the next PageStats message",
        stream.next(),
    )
    .await
    .expect("stream open")
    .expect("message")
}

/// Live events for `pages`, `per_batch` each batch, timestamps now; some filtered out.
pub(crate) fn live_batch(pages: &[&str], per_batch: usize, keyed: bool, seed: usize) -> Vec<Input> {
    let now = now_ms();
    (0..per_batch)
        .map(|i| {
            let page = pages[(i + seed) % pages.len()];
            let mut input = Input::new(
                page,
                now + (i as i64 % 50),
                50 + ((i * 37 + seed) % 950) as i64,
            );
            if !keyed && i % 2 == 0 {
                // Null keys, as kcat or any plain producer would send.
                input.key = None;
            }
            input
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_neither_loses_nor_double_counts() {
    let (input, output) = (random_name("eo-in"), random_name("eo-out"));
    on_each_broker_with(counting(&input, &output, 3_000, None), |server| {
        let (input, output) = (input.clone(), output.clone());
        async move {
            crate::support::init_logs();
            let group = random_name("eo-g");
            let client_settings = server.kafka.client_settings();
            let mut client = server.client().await;
            let pages = ["P1", "P2", "P3", "Accueil", "ページ"];
            let mut inputs = Vec::new();
            let send = |batch: Vec<Input>, inputs: &mut Vec<Input>| {
                let requests = batch.iter().map(|i| i.request(&input)).collect();
                inputs.extend(batch);
                requests
            };

            let w1 = Worker::spawn(
                client_settings.clone(),
                worker_settings(&input, &output, &group),
                tokio_util::sync::CancellationToken::new(),
            )
            .expect("worker 1");
            for seed in 0..3 {
                let requests = send(live_batch(&pages, 200, seed % 2 == 0, seed), &mut inputs);
                publish(&mut client, requests).await;
            }
            committed(&w1, 2).await;
            // More input in flight, then the worker dies inside a transaction: its R4
            // records are on the broker, its offsets and commit never follow.
            let requests = send(live_batch(&pages, 200, true, 3), &mut inputs);
            publish(&mut client, requests).await;
            tokio::task::spawn_blocking(move || w1.abandon(Abandon::MidTransaction))
                .await
                .expect("w1 stops");

            let w2 = Worker::spawn(
                client_settings.clone(),
                worker_settings(&input, &output, &group),
                tokio_util::sync::CancellationToken::new(),
            )
            .expect("worker 2");
            for seed in 4..6 {
                let requests = send(live_batch(&pages, 200, false, seed), &mut inputs);
                publish(&mut client, requests).await;
            }
            committed(&w2, 1).await;
            // This one dies between two records, with counted-but-uncommitted state.
            tokio::task::spawn_blocking(move || w2.abandon(Abandon::Now))
                .await
                .expect("w2 stops");

            let shutdown = tokio_util::sync::CancellationToken::new();
            let w3 = Worker::spawn(
                client_settings,
                worker_settings(&input, &output, &group),
                shutdown.clone(),
            )
            .expect("worker 3");
            let requests = send(live_batch(&pages, 200, true, 6), &mut inputs);
            publish(&mut client, requests).await;

            let expected = expected_counts(&inputs);
            let records = read_stats_until(&server, &output, Duration::from_secs(120), |records| {
                let finals = summed(&finals(records));
                expected.keys().all(|k| finals.contains_key(k))
                    && expected
                        .iter()
                        .all(|(k, v)| finals.get(k).is_some_and(|c| c >= v))
            })
            .await;
            let got = summed(&finals(&records));
            assert_eq!(got, expected, "final counts equal the input exactly");

            let windows: Vec<i64> = expected
                .keys()
                .map(|(_, w)| *w)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut watch = watch_finals(&server).await;
            // The first message is the newest final window; older ones were final before.
            let seen = final_windows(
                &mut watch,
                &windows[windows.len() - 1..],
                Duration::from_secs(60),
            )
            .await;
            for (start, pages) in seen {
                for (page, count) in pages {
                    assert_eq!(
                        Some(&count).filter(|c| **c > 0),
                        expected.get(&(page.clone(), start)),
                        "{page} at {start} in WatchPageStats"
                    );
                }
            }
            shutdown.cancel();
            tokio::task::spawn_blocking(move || w3.join())
                .await
                .expect("w3 stops");
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_split_the_input_and_show_the_same_global_counts() {
    let (input, output, group) = (
        random_name("so-in"),
        random_name("so-out"),
        random_name("so-g"),
    );
    let configure = counting(&input, &output, 3_000, Some(&group));
    on_each_broker_with(configure.clone(), |first| {
        let (input, configure) = (input.clone(), configure.clone());
        async move {
            let mut client = first.client().await;
            let pages = ["P1", "P2", "P3", "P4"];
            let mut inputs = Vec::new();
            for seed in 0..3 {
                let batch = live_batch(&pages, 150, false, seed);
                publish(
                    &mut client,
                    batch.iter().map(|i| i.request(&input)).collect(),
                )
                .await;
                inputs.extend(batch);
                // Pacing, not synchronisation: the batches are spread over time, so that
                // events still flow (with fresh timestamps) when the second server joins.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            // A second server joins the group while events flow: a rebalance.
            let second = TestServer::start(first.kafka.clone(), first.kind, configure).await;
            for seed in 3..12 {
                let batch = live_batch(&pages, 150, seed % 3 == 0, seed);
                publish(
                    &mut client,
                    batch.iter().map(|i| i.request(&input)).collect(),
                )
                .await;
                inputs.extend(batch);
                // Pacing, as above: the rebalance happens while events flow.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let expected = expected_counts(&inputs);
            let windows: Vec<i64> = expected
                .keys()
                .map(|(_, w)| *w)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let newest = *windows.last().expect("windows");
            let mut views = Vec::new();
            for server in [&first, &second] {
                let mut watch = watch_finals(server).await;
                let seen = final_windows(&mut watch, &[newest], Duration::from_secs(90)).await;
                views.push(seen[&newest].clone());
            }
            let want: BTreeMap<String, u64> = pages
                .iter()
                .map(|p| {
                    (
                        (*p).to_owned(),
                        expected
                            .get(&((*p).to_owned(), newest))
                            .copied()
                            .unwrap_or(0),
                    )
                })
                .collect();
            assert_eq!(views[0], want, "the first server's global counts");
            assert_eq!(views[1], want, "the second server's global counts");

            second.stop().await;
            first.stop().await;
        }
    })
    .await;
}

/// The supplier at 20 events/s and the analytics worker, on topics and a group of the test's
/// own (named with `prefix`), ticking every 200 ms.
pub(crate) fn supplier_counting(prefix: &str) -> impl Fn(&mut Settings) + Clone + use<> {
    let (input, output, group) = (
        random_name(&format!("{prefix}-in")),
        random_name(&format!("{prefix}-out")),
        random_name(&format!("{prefix}-g")),
    );
    move |s: &mut Settings| {
        s.supplier.settings.rate_per_second = 20.0;
        s.analytics.tick = Duration::from_millis(200);
        s.analytics.worker = true;
        s.supplier.settings.topic = topic_name(&input);
        s.topics.stats = topic_name(&output);
        s.analytics.group = group.clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_and_a_slow_one() {
    on_each_broker_with(supplier_counting("w"), |server| async move {
        // Several connections, as browsers and CLIs would open them (each connection allows
        // a bounded number of concurrent streams).
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(server.client().await);
        }
        // Every watcher is read from the moment it opens, as a client would: unread, a
        // hundred streams of small messages on one connection fill the client's HTTP/2 budget
        // for buffered frames, and h2 closes the connection (ENHANCE_YOUR_CALM) — the test
        // then measured a loaded machine's pace of opening streams, not the server. Each
        // reader reports its first three messages and keeps its watch open and read until
        // all thousand have reported.
        let all_reported = tokio_util::sync::CancellationToken::new();
        let (report, mut reports) = tokio::sync::mpsc::channel(1000);
        let mut readers = Vec::new();
        for i in 0..1000 {
            let connections = clients.len();
            let mut stream = clients[i % connections]
                .watch_page_stats(WatchPageStatsRequest::default())
                .await
                .expect("watch")
                .into_inner();
            let (report, all_reported) = (report.clone(), all_reported.clone());
            readers.push(tokio::spawn(async move {
                let a = next_stats(&mut stream).await;
                let b = next_stats(&mut stream).await;
                let c = next_stats(&mut stream).await;
                report.send((a, c, b)).await.expect("the test is waiting");
                tokio::select! {
                    () = all_reported.cancelled() => {}
                    _ = async { while let Some(Ok(_)) = stream.next().await {} } => {
                        panic!("a watch ended while the others were still opening")
                    }
                }
            }));
        }
        let mut firsts = Vec::new();
        while firsts.len() < 1000 {
            firsts.push(reports.recv().await.expect("every reader reports"));
        }
        all_reported.cancel();
        for reader in readers {
            reader.await.expect("a reader kept its watch open");
        }
        for (first, third, _) in &firsts {
            let t = |m: &PageStats| to_millis(&m.generated_at.expect("time")).expect("valid");
            assert!(t(third) > t(first), "each watcher gets fresh ticks");
            assert_eq!(
                first.rolling.expect("rolling").seconds,
                5,
                "the default rolling period is the window"
            );
        }

        // A watcher that stops reading gets the latest state afterwards, with the ticks it
        // missed counted, not a backlog.
        // A tiny HTTP/2 window, so that not reading really stops the flow (a normal window
        // would buffer many small messages in the client).
        let channel = tonic::transport::Endpoint::from_shared(server.url())
            .expect("url")
            .initial_stream_window_size(Some(256))
            .connect()
            .await
            .expect("connect");
        let mut slow = EventGatewayClient::new(channel)
            .watch_page_stats(WatchPageStatsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let first = next_stats(&mut slow).await;
        // The scenario, not a synchronisation: the watcher does not read for a while (fifteen
        // ticks of 200 ms), so that the server has ticks to skip.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut skipped = 0;
        let mut latest = first.clone();
        // What the window and the server's one-message channel hold comes first; then the
        // latest state, with the ticks it skipped.
        for _ in 0..40 {
            latest = next_stats(&mut slow).await;
            skipped += latest.skipped_ticks;
            if skipped > 0 {
                break;
            }
        }
        assert!(
            skipped >= 3,
            "ticks missed while not reading are counted: {skipped}"
        );
        let t = |m: &PageStats| to_millis(&m.generated_at.expect("time")).expect("valid");
        assert!(
            t(&latest) - t(&first) >= 2_500,
            "the slow watcher got the latest state"
        );
        // The supplier's events reach the watchers through the worker and R4.
        eventually(
            Duration::from_secs(60),
            "the supplier's pages are counted",
            async || {
                if latest
                    .pages
                    .iter()
                    .any(|p| p.page == "P1" && p.rolling_count > 0)
                {
                    return Ok(());
                }
                let seen = std::mem::replace(&mut latest, next_stats(&mut slow).await);
                Err(seen)
            },
        )
        .await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rejects_a_rolling_period_beyond_the_retention() {
    let server = TestServer::start(
        Arc::new(streamgate_server::Kafka::embedded(Vec::new()).expect("embedded")),
        BrokerKind::Embedded,
        |s| s.analytics.retention = Duration::from_secs(60),
    )
    .await;
    let status = server
        .client()
        .await
        .watch_page_stats(WatchPageStatsRequest {
            rolling: Some(prost_types::Duration {
                seconds: 120,
                nanos: 0,
            }),
            final_only: false,
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("rolling"), "{}", status.message());
    server.stop().await;
}
