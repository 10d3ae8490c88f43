//! Connections as an attacker holds them: sockets that never speak, too many from one
//! address, and the unauthenticated health watches. Each is bounded by a flag, counted, and
//! leaves other clients served. Nothing here needs a broker beyond the embedded one.

use std::sync::Arc;
use std::time::Duration;

use streamgate_server::{Kafka, Settings};
use streamgate_testkit::tls::TestTls;
use streamgate_testkit::{AuthFile, BrokerKind, TestServer, within};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::metrics::value;

fn embedded() -> Arc<Kafka> {
    Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"))
}

/// Opens `count` TCP connections to `server` that never send a byte.
async fn silent_sockets(server: &TestServer, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    sockets
}

/// Waits until the server closes `socket` (a read returns end of stream or an error).
async fn closed_by_server(socket: &mut TcpStream) {
    let mut buffer = [0u8; 16];
    within(
        Duration::from_secs(30),
        "the server closes the socket",
        async {
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        },
    )
    .await;
}

/// The Done-when scenario on the TLS port, where silent sockets used to fill the handshake
/// slots (256, for 10 s each): with 1,000 of them connected, an authenticated client still
/// connects and is answered promptly, and the silent ones are closed at the handshake
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_sockets_leave_an_authenticated_client_served() {
    let file = AuthFile::new(&[]);
    let configure = |s: &mut Settings| {
        file.apply(s);
        s.http.connections.first_bytes = Duration::from_secs(5);
    };
    let server =
        TestServer::start_tls(embedded(), BrokerKind::Embedded, configure, TestTls::new()).await;
    let mut silent = silent_sockets(&server, 1000).await;
    // The bound is generous for a loaded debug build; the time itself is printed (well
    // under a second on the development machine: docs/testing.md).
    let started = std::time::Instant::now();
    let answered = within(
        Duration::from_secs(3),
        "a call among silent sockets",
        async {
            let mut client = server.client_with_token(server.admin_token).await;
            client
                .list_topics(streamgate::proto::ListTopicsRequest::default())
                .await
        },
    )
    .await;
    answered.expect("served");
    eprintln!(
        "an authenticated call among 1,000 silent sockets answered in {:?}",
        started.elapsed()
    );
    for socket in silent.iter_mut().take(10) {
        closed_by_server(socket).await;
    }
    drop(silent);
    server.stop().await;
}

/// On the plaintext port, a socket that never sends the HTTP/2 preface is closed at the
/// timeout (it used to stay open for good); one address cannot hold more than its share of
/// connections, and the refusal is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_surplus_connections_are_closed_and_counted() {
    let configure = |s: &mut Settings| {
        s.http.connections.first_bytes = Duration::from_millis(300);
        s.http.connections.per_ip = 3;
    };
    let server = TestServer::start(embedded(), BrokerKind::Embedded, configure).await;
    let mut silent = silent_sockets(&server, 1).await.remove(0);
    closed_by_server(&mut silent).await;

    // Two silent sockets and a working client take the address's three places...
    let _held = silent_sockets(&server, 2).await;
    let mut client = server.client().await;
    client
        .list_topics(streamgate::proto::ListTopicsRequest::default())
        .await
        .expect("the third place");
    // ...so a fourth connection is closed at once.
    let mut surplus = silent_sockets(&server, 1).await.remove(0);
    closed_by_server(&mut surplus).await;
    drop((_held, client));
    // The server frees the places when it sees those sockets close: retry until it has.
    let page = within(
        Duration::from_secs(30),
        "a scrape once places are free",
        async {
            loop {
                let url = format!("{}/metrics", server.url());
                if let Ok(response) = reqwest::get(&url).await {
                    return response.text().await.expect("a body");
                }
                tokio::task::yield_now().await;
            }
        },
    )
    .await;
    assert!(
        value(&page, "streamgate_connections_refused_total") >= 1.0,
        "{page}"
    );
    assert!(
        value(&page, "streamgate_connections_timed_out_total") >= 1.0,
        "{page}"
    );
    server.stop().await;
}

/// Health needs no token, so its watches are capped per connection and in total; Check is
/// not, and a watch's place comes back when it ends. At shutdown the open watches end with
/// UNAVAILABLE (they used to hold the drain until --shutdown-timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_watches_are_capped_per_connection_and_in_total() {
    let configure = |s: &mut Settings| {
        s.http.health_watches.total = 3;
        s.http.health_watches.per_connection = 2;
    };
    let server = TestServer::start(embedded(), BrokerKind::Embedded, configure).await;
    let watch = HealthCheckRequest {
        service: String::new(),
    };
    let mut first = HealthClient::new(server.channel().await);
    let a = first.watch(watch.clone()).await.expect("first watch");
    let _b = first.watch(watch.clone()).await.expect("second watch");
    let status = first
        .watch(watch.clone())
        .await
        .expect_err("a third on one connection");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    first
        .check(watch.clone())
        .await
        .expect("Check is not capped");

    let mut second = HealthClient::new(server.channel().await);
    let mut c = second
        .watch(watch.clone())
        .await
        .expect("another connection")
        .into_inner();
    let status = second
        .watch(watch.clone())
        .await
        .expect_err("the server's cap");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("this server"), "{status:?}");
    drop(a);
    within(Duration::from_secs(30), "a freed place", async {
        loop {
            if second.watch(watch.clone()).await.is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    // A watch never ends by itself; the drain ends it, rather than wait for it.
    server.stop().await;
    let ended = within(Duration::from_secs(30), "the watch's end", async {
        loop {
            match c.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the watch ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
}

/// A connection that has made its calls is closed after the idle timeout, though the
/// server's keepalive pings flow on it; a connection with an open stream is not, however
/// quiet the stream: it still delivers after another connection was closed for idling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_open_streams_keep_theirs() {
    let configure = |s: &mut Settings| {
        s.http.connections.idle = Duration::from_secs(1);
        s.http.keepalive = Duration::from_secs(1);
    };
    let server = TestServer::start(embedded(), BrokerKind::Embedded, configure).await;
    let topic = server.topic(1).await;
    let mut quiet = server.client().await;
    let latest = Some(streamgate::proto::start_position::Position::Latest(true));
    let mut stream = quiet
        .subscribe(crate::support::subscribe_request(&topic, None, latest))
        .await
        .expect("subscribe")
        .into_inner();
    crate::support::next_message(&mut stream, Duration::from_secs(30)).await;

    let mut idle = server.client().await;
    idle.list_topics(streamgate::proto::ListTopicsRequest::default())
        .await
        .expect("one call");
    // Scrapes are calls of their own connections, which idle and close in turn.
    crate::support::eventually(
        Duration::from_secs(30),
        "an idle connection closed",
        async || {
            let url = format!("{}/metrics", server.url());
            let page = reqwest::get(&url).await.ok()?.text().await.ok()?;
            (value(&page, "streamgate_connections_idle_closed_total") >= 1.0).then_some(())
        },
    )
    .await;
    let mut publisher = server.client().await;
    crate::support::publish_values(&mut publisher, &topic, ["after".to_owned()]).await;
    let records = crate::support::next_message(&mut stream, Duration::from_secs(30)).await;
    assert!(records.is_some(), "the quiet stream still delivers");
    server.stop().await;
}
