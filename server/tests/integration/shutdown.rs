//! The drain is bounded: SIGTERM ends the real binary within `--shutdown-timeout` with
//! streams and watchers open (some of them never reading), and even while a Kafka call is
//! stuck on a broker that never answers; a second signal exits at once with code 130.
//!
//! The bounds below are liveness bounds (the process must be gone by then), not
//! measurements: each is the configured drain time plus a wide margin for a loaded machine.

use std::time::Duration;

use futures::StreamExt;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, ControlSupplierRequest, WatchPageStatsRequest, start_position};
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::process::ServerProcess;
use crate::support::{eventually, next_message, subscribe_request, within};

/// Streams and watchers open during the drain.
const STREAMS: usize = 50;
/// Slack over the drain time for process start-up and exit on a busy machine.
const MARGIN: Duration = Duration::from_secs(10);

/// Opens `STREAMS` Subscribe streams and as many watchers, reads the first message of each
/// (so each is really open), and keeps them — half of them are never read again.
async fn open_streams(
    client: &EventGatewayClient<Channel>,
) -> (
    Vec<tonic::Streaming<proto::SubscribeResponse>>,
    Vec<tonic::Streaming<proto::PageStats>>,
) {
    let (mut subscriptions, mut watchers) = (Vec::new(), Vec::new());
    for _ in 0..STREAMS {
        let request = subscribe_request("R2", None, Some(start_position::Position::Latest(true)));
        let mut stream = client
            .clone()
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner();
        assert!(
            matches!(
                next_message(&mut stream, Duration::from_secs(30)).await,
                Some(proto::subscribe_response::Message::Assignment(_))
            ),
            "a subscription starts with its assignment"
        );
        subscriptions.push(stream);

        let mut watcher = client
            .clone()
            .watch_page_stats(WatchPageStatsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        within(
            Duration::from_secs(30),
            "a watcher's first message",
            watcher.next(),
        )
        .await
        .expect("a first message")
        .expect("stats");
        watchers.push(watcher);
    }
    (subscriptions, watchers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_streams_and_watchers_exits_within_the_drain_time() {
    let drain = Duration::from_secs(5);
    let mut server =
        ServerProcess::start(&["--shutdown-timeout", "5s", "--supplier-rate", "50"]).await;
    let client = EventGatewayClient::connect(server.url.clone())
        .await
        .expect("connect");
    let (mut subscriptions, mut watchers) = open_streams(&client).await;

    server.signal("TERM").await;
    let status = server.exit_within(drain + MARGIN).await;
    assert!(
        status.success(),
        "a drained server exits with 0, got {status:?}"
    );

    // Streams that were read end with a status (UNAVAILABLE, shutting down) or a clean end;
    // none is left hanging.
    for stream in subscriptions.iter_mut().step_by(2) {
        let end = within(Duration::from_secs(10), "a subscription ends", async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(status)) => return Some(status.code()),
                    None => return None,
                }
            }
        })
        .await;
        assert!(
            end.is_none_or(|code| matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown)),
            "a subscription ended with {end:?}"
        );
    }
    for watcher in watchers.iter_mut().step_by(2) {
        within(Duration::from_secs(10), "a watcher ends", async {
            while let Some(Ok(_)) = watcher.next().await {}
        })
        .await;
    }
}

/// A TCP listener that accepts connections and never answers: a broker that hangs every
/// request, so the producer's flush at shutdown blocks.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (address, task)
}

/// Starts the binary over a broker that never answers, with the supplier producing, and
/// waits until its sends time out — records are then stuck in the producer's queue.
async fn server_with_stuck_producer(drain: &str) -> (ServerProcess, tokio::task::JoinHandle<()>) {
    let (broker, hole) = black_hole().await;
    let server = ServerProcess::start(&[
        "--brokers",
        &broker,
        "--shutdown-timeout",
        drain,
        "--request-timeout",
        "1s",
        "--supplier-rate",
        "100",
    ])
    .await;
    let mut client = EventGatewayClient::connect(server.url.clone())
        .await
        .expect("connect");
    eventually(
        Duration::from_secs(30),
        "supplier sends time out",
        async || {
            let status = client
                .control_supplier(ControlSupplierRequest::default())
                .await
                .ok()?
                .into_inner();
            (status.errors > 0).then_some(())
        },
    )
    .await;
    (server, hole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_call_stuck_on_the_broker_does_not_hold_the_exit() {
    let drain = Duration::from_secs(2);
    let (mut server, hole) = server_with_stuck_producer("2s").await;
    server.signal("TERM").await;
    let status = server.exit_within(drain + MARGIN).await;
    assert!(status.success(), "exit after a bounded drain: {status:?}");
    assert!(
        server
            .wait_for_line(&["producer flush"], Duration::from_secs(5))
            .await
            .is_some(),
        "the drain says the flush was left behind"
    );
    hole.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_with_130() {
    // A drain that would take two minutes: only the second signal can end it in time.
    let (mut server, hole) = server_with_stuck_producer("120s").await;
    server.signal("TERM").await;
    assert!(
        server
            .wait_for_line(&["shutdown signal received"], Duration::from_secs(30))
            .await
            .is_some(),
        "the first signal starts the drain"
    );
    server.signal("INT").await;
    let status = server.exit_within(MARGIN).await;
    assert_eq!(status.code(), Some(130), "a second signal exits with 130");
    hole.abort();
}
