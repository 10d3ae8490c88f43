//! The soak: every kind of load at once for a while, with the broker taken away and given
//! back midway, and a ledger that checks what the docs promise (see `ledger`). The server
//! runs its stages (supplier at 2,000 events/s, transform, analytics, log consumer) while
//! unary Publish calls and a PublishStream write a topic that a Subscribe group and a
//! Consume group (acking, nacking one record in ten once) read, and WatchPageStats
//! watchers follow the counts. At the end: every acknowledged record reached both groups,
//! none was written twice or delivered twice beyond at-least-once, every stream lasted the
//! whole run, the supplier and the counts came back after the outage, no task restarted,
//! and the process's memory did not keep growing.
//!
//! `STREAMGATE_SOAK_SECONDS` sets the load's length: 60 by default (in the test command);
//! docs/testing.md records a 10-minute run on each broker.

mod ledger;
mod memory;
mod readers;
mod writers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::join_all;
use streamgate::proto::{ControlSupplierRequest, SupplierAction, SupplierSettingsUpdate};
use streamgate_server::{Kafka, Settings};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::ledger::{Deliveries, Kind, Sent};
use self::memory::Samples;
use self::readers::Watch;
use crate::metrics::{scrape, value};
use crate::outage::{Injected, Outage, PrivateTansu, tansu_binary};
use crate::support::{BrokerKind, TestServer, eventually, random_name, within};

/// Members of each reader group, and watchers.
const MEMBERS: usize = 2;
const WATCHERS: usize = 4;
/// Unary writers (one call at a time each) and their rate; the PublishStream's rate.
const UNARY_WRITERS: usize = 2;
const UNARY_RATE: f64 = 50.0;
const STREAM_RATE: f64 = 200.0;
const SUPPLIER_RATE: f64 = 2_000.0;
/// How far resident memory may rise in the run's last quarter above its highest point
/// before it (the warm-up, the outage and the catch-up after it): above the embedded
/// broker's own growth as it fills its partitions (under 1 MiB/s at this load, bounded at
/// 5 MiB a partition), far below what a leak of the kind the soak hunts adds in 15 s.
const MEMORY_SLACK_MIB: u64 = 32;
/// Long enough for a group to rejoin and catch up after the outage on the real broker.
const PATIENCE: Duration = Duration::from_secs(180);

fn load_length() -> Duration {
    let seconds = std::env::var("STREAMGATE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

/// How long the broker is away. The analytics worker rides out up to a minute (its
/// transactions are written again, a stuck producer replaced); 8 s keeps the shortened
/// run's recovery well inside its minute. docs/testing.md, "The soak", has longer ones.
const OUTAGE: Duration = Duration::from_secs(8);

/// When the outage starts, 40 % into the run, and how long it lasts.
fn outage_window(run: Duration) -> (Duration, Duration) {
    (run.mul_f64(0.4), OUTAGE)
}

fn configure(s: &mut Settings) {
    s.transform.run = true;
    s.analytics.worker = true;
    s.log_consumer = true;
    s.supplier.running = false;
    s.timeouts.request = Duration::from_secs(10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_the_embedded_broker() {
    let embedded = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"));
    let server = TestServer::start(embedded.clone(), BrokerKind::Embedded, configure).await;
    soak(server, &mut Injected(embedded)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_tansu_with_its_connections_cut() {
    let Some(binary) = tansu_binary() else {
        eprintln!("STREAMGATE_TEST_TANSU not set: no soak on Tansu");
        return;
    };
    let mut tansu = PrivateTansu::start(binary).await;
    let kafka = Arc::new(Kafka::external(tansu.bootstrap(), Vec::new()));
    let server = TestServer::start(kafka, BrokerKind::Real, configure).await;
    soak(server, &mut tansu).await;
}

/// The shared state of one run.
struct Run {
    sent: Arc<Mutex<Sent>>,
    subscribed: Arc<Mutex<Deliveries>>,
    consumed: Arc<Mutex<Deliveries>>,
    watches: Vec<Arc<Mutex<Watch>>>,
    memory: Arc<Mutex<Samples>>,
    /// Ends the readers and watchers; the writers have a token of their own.
    stop_reading: CancellationToken,
    readers: Vec<JoinHandle<Result<(), String>>>,
}

/// Runs the soak, then stops the server whether it passed or not, and only then reports a
/// failure: unwinding with the server's stages still talking to a broker that the test is
/// about to kill would leave the process waiting on their Kafka clients' close.
async fn soak(server: TestServer, outage: &mut impl Outage) {
    let outcome = AssertUnwindSafe(load_and_check(&server, outage))
        .catch_unwind()
        .await;
    server.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn load_and_check(server: &TestServer, outage: &mut impl Outage) {
    let length = load_length();
    server.wait_serving().await;
    let topic = server.topic(3).await;
    let run = start_readers(server, &topic).await;
    start_supplier(server).await;

    let stop_writing = CancellationToken::new();
    let writers = start_writers(server, &topic, &run, &stop_writing).await;
    let sampler = tokio::spawn(memory::sample(run.memory.clone(), run.stop_reading.clone()));
    let started = Instant::now();
    let up = cut_midway(length, outage).await;
    let at_up = supplier_sent(server).await;
    tokio::time::sleep_until(started + length).await;
    stop_writing.cancel();
    let tallies = within(PATIENCE, "the writers finish", join_all(writers)).await;
    let tallies: Vec<_> = tallies
        .into_iter()
        .map(|t| t.expect("writer task"))
        .collect();
    eprintln!("writers: {tallies:?}");

    every_acked_record_arrives(&run).await;
    the_stages_came_back(server, &run, up, at_up).await;
    run.stop_reading.cancel();
    let readers = within(PATIENCE, "the streams end", join_all(run.readers)).await;
    for reader in readers {
        reader
            .expect("reader task")
            .expect("a stream lasts the whole run");
    }
    within(PATIENCE, "the sampler ends", sampler)
        .await
        .expect("sampler");
    nothing_twice(&run.subscribed, "Subscribe");
    nothing_twice(&run.consumed, "Consume");
    memory_is_flat(&run.memory.lock().expect("not poisoned"), length);
    no_task_restarted(server).await;
}

/// Starts both groups' members and the watchers; returns once each group has every
/// partition of `topic` assigned to some member.
async fn start_readers(server: &TestServer, topic: &str) -> Run {
    let mut run = Run {
        sent: Arc::default(),
        subscribed: Arc::new(Mutex::new(Deliveries::new(Kind::Subscribe))),
        consumed: Arc::new(Mutex::new(Deliveries::new(Kind::Consume))),
        watches: (0..WATCHERS).map(|_| Arc::default()).collect(),
        memory: Arc::default(),
        stop_reading: CancellationToken::new(),
        readers: Vec::new(),
    };
    let (sub_group, con_group) = (random_name("soak-sub"), random_name("soak-con"));
    for _ in 0..MEMBERS {
        let ledger = (run.sent.clone(), run.subscribed.clone());
        let (client, stop) = (server.client().await, run.stop_reading.clone());
        let member = readers::subscriber(client, topic.into(), sub_group.clone(), ledger, stop);
        run.readers.push(tokio::spawn(member));
        let ledger = (run.sent.clone(), run.consumed.clone());
        let (client, stop) = (server.client().await, run.stop_reading.clone());
        let member = readers::consumer(client, topic.into(), con_group.clone(), ledger, stop);
        run.readers.push(tokio::spawn(member));
    }
    for seen in &run.watches {
        let (client, stop) = (server.client().await, run.stop_reading.clone());
        run.readers
            .push(tokio::spawn(readers::watcher(client, seen.clone(), stop)));
    }
    for (group, name) in [(&run.subscribed, "Subscribe"), (&run.consumed, "Consume")] {
        eventually(
            PATIENCE,
            &format!("the {name} group assigned"),
            async || {
                let assigned = group.lock().expect("not poisoned").assigned_partitions();
                (assigned == 3).then_some(()).ok_or(assigned)
            },
        )
        .await;
    }
    run
}

async fn start_supplier(server: &TestServer) {
    let settings = SupplierSettingsUpdate {
        rate_per_second: Some(SUPPLIER_RATE),
        ..Default::default()
    };
    let request = ControlSupplierRequest {
        action: SupplierAction::Start as i32,
        settings: Some(settings),
    };
    server
        .client()
        .await
        .control_supplier(request)
        .await
        .expect("supplier starts");
}

async fn supplier_sent(server: &TestServer) -> u64 {
    let request = ControlSupplierRequest::default();
    let status = server.client().await.control_supplier(request).await;
    status.expect("supplier status").into_inner().events_sent
}

async fn start_writers(
    server: &TestServer,
    topic: &str,
    run: &Run,
    stop: &CancellationToken,
) -> Vec<JoinHandle<writers::Tally>> {
    let mut tasks = Vec::new();
    for _ in 0..UNARY_WRITERS {
        let client = server.client().await;
        let (sent, stop) = (run.sent.clone(), stop.clone());
        tasks.push(tokio::spawn(writers::unary(
            client,
            topic.into(),
            sent,
            UNARY_RATE,
            stop,
        )));
    }
    let client = server.client().await;
    let (sent, stop) = (run.sent.clone(), stop.clone());
    let stream = writers::stream(client, topic.into(), sent, STREAM_RATE, stop);
    tasks.push(tokio::spawn(async move {
        stream
            .await
            .unwrap_or_else(|e| panic!("the PublishStream: {e}"))
    }));
    tasks
}

/// Waits until the outage's start, takes the broker away, gives it back after the
/// outage's length; returns when it came back.
async fn cut_midway(run: Duration, outage: &mut impl Outage) -> Instant {
    let started = Instant::now();
    let (at, length) = outage_window(run);
    tokio::time::sleep(at).await;
    eprintln!("--- broker down at {:?}", started.elapsed());
    outage.down().await;
    tokio::time::sleep(length).await;
    outage.up().await;
    eprintln!("--- broker up at {:?}", started.elapsed());
    Instant::now()
}

async fn every_acked_record_arrives(run: &Run) {
    for (group, name) in [(&run.subscribed, "Subscribe"), (&run.consumed, "Consume")] {
        eventually(
            PATIENCE,
            &format!("every acked record through {name}"),
            async || {
                let sent = run.sent.lock().expect("not poisoned");
                let (count, first) = group.lock().expect("not poisoned").missing(&sent);
                (count == 0).then_some(()).ok_or((count, first))
            },
        )
        .await;
    }
    let (acked, failed, pending) = run.sent.lock().expect("not poisoned").counts();
    eprintln!("records: {acked} acked, {failed} failed (written or not), {pending} unanswered");
    assert_eq!(pending, 0, "every record got an answer");
    assert!(acked > 0);
}

/// After the outage the supplier sends again and every watcher sees visits counted.
async fn the_stages_came_back(server: &TestServer, run: &Run, up: Instant, at_up: u64) {
    let sent = supplier_sent(server).await;
    eprintln!("supplier: {at_up} events sent at the restore, {sent} at the end");
    assert!(
        sent >= at_up + SUPPLIER_RATE as u64,
        "the supplier went on after the outage"
    );
    for (i, watch) in run.watches.iter().enumerate() {
        eventually(
            PATIENCE,
            &format!("watcher {i} counting after the outage"),
            async || {
                let seen = watch.lock().expect("not poisoned");
                seen.last_counting
                    .is_some_and(|at| at > up)
                    .then_some(())
                    .ok_or(seen.messages)
            },
        )
        .await;
    }
}

fn nothing_twice(group: &Mutex<Deliveries>, name: &str) {
    let group = group.lock().expect("not poisoned");
    eprintln!(
        "{name}: {} deliveries, {} allowed repeats, {} violations",
        group.delivered, group.allowed_repeats, group.violation_count
    );
    assert_eq!(group.violation_count, 0, "{name}: {:#?}", group.violations);
}

/// No supervised task restarted and nothing panicked. On Tansu the cut often leaves the
/// analytics worker's producer unable to abort (its epoch bump goes unanswered), and the
/// worker replaces the producer instead of restarting: printed, not asserted, since Kafka
/// and the embedded broker let the abort through.
async fn no_task_restarted(server: &TestServer) {
    let page = scrape(server).await;
    let restarts: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("streamgate_task_restarts_total{"))
        .collect();
    eprintln!("{restarts:?}");
    eprintln!(
        "analytics producers replaced: {}",
        value(&page, "streamgate_analytics_producer_replacements_total")
    );
    assert_eq!(
        value(&page, "streamgate_task_restarts_total"),
        0.0,
        "{restarts:#?}"
    );
    assert_eq!(value(&page, "streamgate_panics_total"), 0.0, "no panic");
}

fn memory_is_flat(samples: &Samples, run: Duration) {
    let report: Vec<String> = [0.1, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&at| format!("{:.0} % {:.1} MiB", at * 100.0, samples.mib_at(run, at)))
        .collect();
    eprintln!("resident memory: {}", report.join(", "));
    let (Some(before), Some(last)) = (
        samples.max_between(run, 0.0, 0.75),
        samples.max_between(run, 0.75, 1.0),
    ) else {
        panic!("no memory samples: {samples:?}");
    };
    assert!(
        last <= before + MEMORY_SLACK_MIB * 1024,
        "resident memory rose to {last} KiB in the last quarter, from at most {before} KiB before"
    );
}
