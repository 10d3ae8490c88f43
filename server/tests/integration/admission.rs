//! Admission at the transport: HTTP/2 `max_concurrent_streams` per connection, and
//! keepalive pings that notice a half-open client so its subscription slot comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, start_position};
use streamgate_server::{Kafka, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;

use crate::support::{
    BrokerKind, TestServer, eventually, next_message, on_each_broker_with, subscribe_request,
};

fn latest() -> proto::SubscribeRequest {
    subscribe_request("R2", None, Some(start_position::Position::Latest(true)))
}

/// Opens a subscription and reads its assignment, so it is really open.
async fn open(
    client: &mut EventGatewayClient<tonic::transport::Channel>,
) -> tonic::Streaming<proto::SubscribeResponse> {
    let mut stream = client
        .subscribe(latest())
        .await
        .expect("subscribe")
        .into_inner();
    next_message(&mut stream, Duration::from_secs(30)).await;
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_carries_at_most_max_concurrent_streams() {
    let two_streams = |s: &mut Settings| s.http.max_concurrent_streams = 2;
    on_each_broker_with(two_streams, |server| async move {
        let mut client = server.client().await;
        let first = open(&mut client).await;
        let _second = open(&mut client).await;
        // The third call on the same connection waits for a free stream. (Answered, it
        // would take milliseconds; two seconds without an answer mean it is held back.)
        let mut waiting = client.clone();
        let third = tokio::time::timeout(
            Duration::from_secs(2),
            waiting.list_topics(proto::ListTopicsRequest::default()),
        )
        .await;
        assert!(third.is_err(), "a third stream was let through: {third:?}");
        // A stream that ends frees its place.
        drop(first);
        eventually(Duration::from_secs(30), "a call gets through", async || {
            client
                .list_topics(proto::ListTopicsRequest::default())
                .await
        })
        .await;
        server.stop().await;
    })
    .await;
}

/// A TCP relay to `target` that can be frozen: it then stops moving bytes either way but
/// keeps both connections open — a half-open client, as a dead host or a broken NAT
/// leaves one.
async fn freezable_relay(target: std::net::SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let frozen = Arc::new(AtomicBool::new(false));
    let flag = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pipe(client_read, server_write, flag.clone()));
            tokio::spawn(pipe(server_read, client_write, flag.clone()));
        }
    });
    (url, frozen)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            return;
        }
        if frozen.load(Ordering::Acquire) {
            // Swallow everything from now on, answer nothing, close nothing.
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_releases_the_slot_of_a_half_open_client() {
    let configure = |s: &mut Settings| {
        s.limits.max_subscriptions = 1;
        s.http.keepalive = Duration::from_secs(1);
        s.http.keepalive_timeout = Duration::from_secs(1);
    };
    on_each_broker_with(configure, |server: TestServer| async move {
        let (relay, frozen) = freezable_relay(server.addr).await;
        let mut far = EventGatewayClient::connect(relay).await.expect("connect");
        let _held = open(&mut far).await;
        let mut near = server.client().await;
        let status = near
            .subscribe(latest())
            .await
            .expect_err("the slot is taken");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

        // The far client goes silent; the server's unanswered pings close its connection.
        frozen.store(true, Ordering::Release);
        eventually(Duration::from_secs(30), "the slot comes back", async || {
            near.subscribe(latest()).await.map(|_| ())
        })
        .await;
        server.stop().await;
    })
    .await;
}

/// How many slots of each kind a greedy-principal scenario gives the server.
#[derive(Clone, Copy)]
struct Scale {
    subscriptions: usize,
    watchers: usize,
    reserve: usize,
}

/// The Done-when scenario, scaled down, on both brokers: a read-only principal opens every
/// Subscribe and WatchPageStats stream it can, and still the admin subscribes, consumes and
/// watches from the reserve; the refusals name the reserve's flag. A scrape-only principal
/// cannot take a PublishStream slot at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_principal_leaves_the_admin_its_reserve() {
    let scale = Scale {
        subscriptions: 6,
        watchers: 40,
        reserve: 2,
    };
    greedy_principal(scale, true).await;
}

/// The same at the default limits (128 streams, 1,024 watchers, 8 reserved), on the
/// embedded broker: 120 Subscribe streams of the greedy principal, each with its own Kafka
/// consumer, and 1,016 watchers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_principal_at_the_default_limits_leaves_the_admin_its_reserve() {
    let defaults = streamgate_testkit::settings().limits;
    let scale = Scale {
        subscriptions: defaults.max_subscriptions,
        watchers: defaults.max_watchers,
        reserve: defaults.admin_reserved_slots,
    };
    assert_eq!(
        (scale.subscriptions, scale.watchers, scale.reserve),
        (128, 1024, 8)
    );
    greedy_principal(scale, false).await;
}

/// Streams the greedy client opens on one connection: fewer than the server's
/// `max_concurrent_streams`, so that no stream waits for room on its connection.
const STREAMS_PER_CONNECTION: usize = 50;

async fn greedy_principal(scale: Scale, real_broker_too: bool) {
    let file = streamgate_testkit::AuthFile::new(&[
        ("greedy", "greedy-token", &["subscribe:*", "stats"]),
        ("scraper", "scraper-token", &["metrics"]),
    ]);
    let configure = |s: &mut Settings| {
        file.apply(s);
        s.limits.max_subscriptions = scale.subscriptions;
        s.limits.max_watchers = scale.watchers;
        s.limits.admin_reserved_slots = scale.reserve;
        s.limits.principal_max_subscriptions = 10_000;
        s.limits.principal_max_watchers = 10_000;
    };
    let scenario = |server: TestServer| async move {
        let topic = server.topic(1).await;
        let mut greedy = server.client_with_token(Some("greedy-token")).await;
        let mut held = Vec::new();
        let refused = loop {
            if held.len() % STREAMS_PER_CONNECTION == STREAMS_PER_CONNECTION - 1 {
                greedy = server.client_with_token(Some("greedy-token")).await;
            }
            let request =
                subscribe_request(&topic, None, Some(start_position::Position::Latest(true)));
            match greedy.subscribe(request).await {
                Ok(stream) => held.push(stream.into_inner()),
                Err(status) => break status,
            }
        };
        let all_but_the_reserve = scale.subscriptions - scale.reserve;
        assert_eq!(held.len(), all_but_the_reserve);
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused.message().contains("--admin-reserved-slots"),
            "{refused:?}"
        );
        let mut watchers = Vec::new();
        let refused = loop {
            if watchers.len() % STREAMS_PER_CONNECTION == STREAMS_PER_CONNECTION - 1 {
                greedy = server.client_with_token(Some("greedy-token")).await;
            }
            let request = proto::WatchPageStatsRequest::default();
            match greedy.watch_page_stats(request).await {
                Ok(stream) => watchers.push(stream.into_inner()),
                Err(status) => break status,
            }
        };
        assert_eq!(watchers.len(), scale.watchers - scale.reserve);
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

        let scraper = server.client_with_token(Some("scraper-token")).await;
        let status = scraper
            .clone()
            .publish_stream(futures::stream::empty())
            .await
            .expect_err("no publish grant");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

        let mut admin = server.client_with_token(server.admin_token).await;
        let request = subscribe_request(&topic, None, Some(start_position::Position::Latest(true)));
        let mut subscribed = admin
            .subscribe(request)
            .await
            .expect("admin subscribes")
            .into_inner();
        next_message(&mut subscribed, Duration::from_secs(30)).await;
        let mut watching = admin
            .watch_page_stats(proto::WatchPageStatsRequest::default())
            .await
            .expect("admin watches")
            .into_inner();
        crate::support::within(
            Duration::from_secs(30),
            "a first snapshot",
            futures::StreamExt::next(&mut watching),
        )
        .await
        .expect("a message")
        .expect("no error");
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(proto::ConsumeRequest {
            request: Some(proto::consume_request::Request::Start(
                proto::ConsumeStart {
                    group: crate::support::random_name("g"),
                    topics: vec![topic.clone()],
                    ..Default::default()
                },
            )),
        })
        .await
        .expect("queue start");
        admin
            .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("admin consumes from the reserve");
        server.stop().await;
    };
    if real_broker_too {
        on_each_broker_with(configure, scenario).await;
    } else {
        let embedded = Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"));
        scenario(TestServer::start(embedded, BrokerKind::Embedded, configure).await).await;
    }
}
