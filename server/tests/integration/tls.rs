//! TLS on the one port: gRPC, grpc-web over HTTP/1.1 and the dashboard over TLS; clients
//! that do not speak TLS or do not trust the CA refused; mutual TLS; certificates swapped on
//! disk while a stream stays open, by the file poll and by SIGHUP; grpcurl with -cacert.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, ListTopicsRequest, subscribe_response};
use streamgate_testkit::tls::{ClientTls, TestCa, TestTls, path_arg};
use streamgate_testkit::{on_each_broker_tls, unchanged};
use tonic::transport::Channel;

use crate::process::ServerProcess;
use crate::support::{eventually, next_message, publish_values, subscribe_request, within};
use crate::transports::{frame, unframe};

/// Lists topics over `channel`: the first call of every check below.
async fn list_topics(channel: Channel) -> Result<proto::ListTopicsResponse, tonic::Status> {
    let mut client = EventGatewayClient::new(channel);
    let call = client.list_topics(ListTopicsRequest::default());
    within(Duration::from_secs(30), "ListTopics answers", call)
        .await
        .map(tonic::Response::into_inner)
}

/// A client that must not get through: either its handshake fails, or (TLS 1.3 lets a client
/// finish before the server has checked its certificate) its first call does. Returns what
/// it was told.
async fn refused(tls: &ClientTls, addr: SocketAddr) -> String {
    match tls.channel(addr).await {
        Err(e) => error_chain(&e),
        Ok(channel) => match list_topics(channel).await {
            Err(status) => format!("{status:?}"),
            Ok(listed) => panic!("a client that should be refused listed {listed:?}"),
        },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_with_the_test_ca_and_refuses_plain_text_and_unknown_cas() {
    on_each_broker_tls(TestTls::new, unchanged, |server| async move {
        assert!(server.url().starts_with("https://"), "{}", server.url());
        let topic = server.topic(1).await;
        let listed = list_topics(server.channel().await)
            .await
            .expect("ListTopics over TLS");
        assert!(listed.topics.iter().any(|t| t.name == topic), "{listed:?}");

        // Plain text to the TLS port: the h2 preface is not a ClientHello.
        let plain = async {
            let channel = Channel::from_shared(format!("http://{}", server.addr))
                .expect("url")
                .connect()
                .await?;
            Ok::<_, tonic::transport::Error>(list_topics(channel).await)
        };
        let plain = within(Duration::from_secs(30), "the plain-text client ends", plain).await;
        assert!(
            matches!(plain, Err(_) | Ok(Err(_))),
            "plain text got through: {plain:?}"
        );

        // A client trusting another CA refuses the server's certificate.
        let dir = tempfile::TempDir::new().expect("tempdir");
        let stranger = ClientTls {
            ca_pem: TestCa::new(dir.path(), "stranger").pem,
            identity: None,
        };
        let told = refused(&stranger, server.addr).await;
        assert!(
            told.contains("UnknownIssuer") || told.contains("certificate"),
            "{told}"
        );

        // And the port still serves: failed handshakes cost nothing to the others, and a
        // client that connects and never says a word holds only its own handshake.
        let silent = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("tcp");
        list_topics(server.channel().await)
            .await
            .expect("still serving");
        // Served while the silent one still waits: had its handshake held the accept loop,
        // the server would have timed it out (and closed it) before getting to the other.
        let pending = silent.try_read(&mut [0u8; 1]);
        assert!(
            matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the silent connection was answered or closed: {pending:?}"
        );
        server.stop().await;
    })
    .await;
}

/// reqwest over TLS trusting the test CA, resolving `localhost` to the server.
fn https_client(tls: &TestTls, addr: SocketAddr, http1_only: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.ca.pem.as_bytes()).expect("ca"))
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(30));
    let builder = if http1_only {
        builder.http1_only()
    } else {
        builder
    };
    builder.build().expect("http client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_over_http1_and_the_dashboard_over_tls() {
    on_each_broker_tls(TestTls::new, unchanged, |server| async move {
        let tls = server.tls.clone().expect("tls");
        let topic = server.topic(1).await;
        let base = format!("https://localhost:{}", server.addr.port());

        let response = https_client(&tls, server.addr, true)
            .post(format!("{base}/streamgate.v1.EventGateway/ListTopics"))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(frame(&ListTopicsRequest::default()))
            .send()
            .await
            .expect("grpc-web over TLS");
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        let (messages, trailers) = unframe(response.bytes().await.expect("body"));
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
        let listed = proto::ListTopicsResponse::decode(messages[0].clone()).expect("decodes");
        assert!(listed.topics.iter().any(|t| t.name == topic), "{listed:?}");

        // The dashboard over HTTP/1.1 (ALPN http/1.1) and over HTTP/2 (ALPN h2).
        for (http1_only, version) in [
            (true, reqwest::Version::HTTP_11),
            (false, reqwest::Version::HTTP_2),
        ] {
            let page = https_client(&tls, server.addr, http1_only)
                .get(format!("{base}/"))
                .send()
                .await
                .expect("GET / over TLS");
            assert_eq!(
                (page.status(), page.version()),
                (reqwest::StatusCode::OK, version)
            );
            let html = page.text().await.expect("body");
            assert!(html.to_lowercase().contains("<html"), "{html:.200}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_from_the_client_ca() {
    on_each_broker_tls(TestTls::mutual, unchanged, |server| async move {
        let tls = server.tls.clone().expect("tls");
        // With the good client certificate (what `server.client()` presents).
        list_topics(server.channel().await)
            .await
            .expect("a good client certificate works");

        let no_certificate = ClientTls {
            identity: None,
            ..tls.client_tls()
        };
        let told = refused(&no_certificate, server.addr).await;
        eprintln!("without a client certificate: {told}");

        let rogue_ca = TestCa::new(tls.dir.path(), "rogue");
        let rogue = ClientTls {
            identity: Some(rogue_ca.client_cert(tls.dir.path(), "mallory")),
            ..tls.client_tls()
        };
        let told = refused(&rogue, server.addr).await;
        eprintln!("with a certificate of another CA: {told}");

        list_topics(server.channel().await)
            .await
            .expect("still serving good clients");
        server.stop().await;
    })
    .await;
}

/// Writes a new certificate and key (from `ca`) over the served files, as a renewal would.
fn replace_server_files(tls: &TestTls, ca: &TestCa) {
    let dir = tempfile::TempDir::new_in(tls.dir.path()).expect("tempdir");
    let renewed = ca.server_cert(dir.path(), "renewed");
    // Each file replaced by a rename, so no poll ever reads half a file; the poll may still
    // see the new certificate with the old key, which must fail and keep the old config.
    std::fs::rename(&renewed.cert, &tls.server.cert).expect("replace the certificate");
    std::fs::rename(&renewed.key, &tls.server.key).expect("replace the key");
}

/// Waits until a new connection trusting only `ca` gets through.
async fn wait_until_served_by(ca: &TestCa, addr: SocketAddr) {
    let trusting = ClientTls {
        ca_pem: ca.pem.clone(),
        identity: None,
    };
    eventually(
        Duration::from_secs(30),
        "a new connection sees the new certificate",
        async || {
            let channel = trusting.channel(addr).await.map_err(|e| error_chain(&e))?;
            list_topics(channel)
                .await
                .map(|_| ())
                .map_err(|s| format!("{s:?}"))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_swapped_on_disk_serves_new_connections_and_spares_open_streams() {
    on_each_broker_tls(
        TestTls::new,
        |s| s.tls.as_mut().expect("tls").reload_interval = Duration::from_millis(100),
        |server| async move {
            let tls = server.tls.clone().expect("tls");
            let topic = server.topic(1).await;
            let mut old_client = server.client().await;
            let mut stream = old_client
                .subscribe(subscribe_request(&topic, None, None))
                .await
                .expect("subscribe")
                .into_inner();
            let assignment = next_message(&mut stream, Duration::from_secs(30)).await;
            assert!(
                matches!(assignment, Some(subscribe_response::Message::Assignment(_))),
                "{assignment:?}"
            );

            let second = TestCa::new(tls.dir.path(), "second");
            replace_server_files(&tls, &second);
            wait_until_served_by(&second, server.addr).await;
            let told = refused(&tls.client_tls(), server.addr).await;
            assert!(
                told.contains("UnknownIssuer") || told.contains("certificate"),
                "{told}"
            );

            // The stream opened under the old certificate still delivers.
            publish_values(&mut old_client, &topic, ["after the swap".to_owned()]).await;
            let records = crate::support::records_of(
                next_message(&mut stream, Duration::from_secs(30)).await,
            );
            match records.as_slice() {
                [record] => {
                    assert_eq!(record.value, Some(Bytes::from_static(b"after the swap")))
                }
                other => panic!("expected the record published after the swap, got {other:?}"),
            }
            server.stop().await;
        },
    )
    .await;
}

/// SIGHUP reloads at once (the poll is set to an hour): a broken file is refused with its
/// name in the log and the old certificate kept; then a good one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_bad_reload_keeps_the_old_certificate() {
    let tls = TestTls::new();
    let mut args = tls.server_args();
    args.extend(["--tls-reload-interval", "1h", "--supplier-stopped"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let process = ServerProcess::start(&args).await;
    assert!(process.url.starts_with("https://"), "{}", process.url);
    let addr: SocketAddr = process
        .url
        .trim_start_matches("https://")
        .parse()
        .expect("addr");
    list_topics(tls.client_tls().channel(addr).await.expect("connects"))
        .await
        .expect("lists");

    std::fs::write(&tls.server.cert, "-----BEGIN CERTIFICATE-----\ntorn").expect("write");
    process.signal("HUP").await;
    let cert = tls.server.cert.display().to_string();
    let line = process
        .wait_for_line(&["TLS reload failed", &cert], Duration::from_secs(30))
        .await;
    assert!(line.is_some(), "no reload error naming {cert}");
    list_topics(
        tls.client_tls()
            .channel(addr)
            .await
            .expect("old certificate kept"),
    )
    .await
    .expect("lists");

    let second = TestCa::new(tls.dir.path(), "second");
    replace_server_files(&tls, &second);
    process.signal("HUP").await;
    let line = process
        .wait_for_line(&["TLS reloaded", "SIGHUP"], Duration::from_secs(30))
        .await;
    assert!(line.is_some(), "no reload line");
    wait_until_served_by(&second, addr).await;
    assert!(process.terminate().await.success());
}

fn grpcurl() -> Option<String> {
    std::env::var("STREAMGATE_TEST_GRPCURL").ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_over_tls_with_cacert() {
    let Some(grpcurl) = grpcurl() else {
        eprintln!("STREAMGATE_TEST_GRPCURL is not set: skipping grpcurl over TLS");
        return;
    };
    on_each_broker_tls(TestTls::new, unchanged, |server| {
        let grpcurl = grpcurl.clone();
        async move {
            let tls = server.tls.clone().expect("tls");
            let topic = server.topic(1).await;
            let (ca, target) = (
                path_arg(&tls.ca.path),
                format!("localhost:{}", server.addr.port()),
            );
            let run = |args: &[&str]| {
                let output = Command::new(&grpcurl)
                    .args(["-cacert", &ca])
                    .args(args)
                    .output()
                    .expect("grpcurl runs");
                assert!(
                    output.status.success(),
                    "grpcurl {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8_lossy(&output.stdout).into_owned()
            };
            let listed = run(&[&target, "list"]);
            assert!(
                listed.lines().any(|l| l == "streamgate.v1.EventGateway"),
                "{listed}"
            );
            let topics = run(&["-d", "{}", &target, "streamgate.v1.EventGateway/ListTopics"]);
            assert!(topics.contains(&topic), "{topics}");
            server.stop().await;
        }
    })
    .await;
}
