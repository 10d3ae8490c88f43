//! The request guard, as an attacker meets it: a web page that re-points its own name at
//! 127.0.0.1 (DNS rebinding), a cross-site request a browser sends on its own with the
//! user's client certificate, and a CORS-simple `text/plain` body. Each is refused with 403
//! (or 415) before any service runs; nothing here needs a broker beyond the embedded one.

use std::sync::Arc;
use std::time::Duration;

use streamgate::proto;
use streamgate_server::{Kafka, Settings};
use streamgate_testkit::tls::TestTls;
use streamgate_testkit::{BrokerKind, TestServer};
use tonic::Code;
use tonic::transport::Endpoint;

use crate::transports::{frame, grpc_web_status};

fn embedded() -> Arc<Kafka> {
    Arc::new(Kafka::embedded(Vec::new()).expect("embedded broker"))
}

fn publish(topic: &str) -> proto::PublishRequest {
    proto::PublishRequest {
        topic: topic.to_owned(),
        payload: Some(proto::publish_request::Payload::Value("rebound".into())),
        ..Default::default()
    }
}

/// A grpc-web Publish over HTTP/1.1 with `headers`, as a browser page would send it.
async fn browser_publish(
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut builder = client
        .post(format!("{base}/streamgate.v1.EventGateway/Publish"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(frame(&publish(topic)))
        .send()
        .await
        .expect("the request is answered")
}

fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// The default server (loopback, no authentication): a request naming another host is
/// refused, gRPC and grpc-web and /metrics alike, and says which flag allows a name;
/// localhost, the IP and an `--allowed-hosts` name are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_name_is_refused_before_any_handler() {
    let allow = |s: &mut Settings| s.http.allowed_hosts = Some(vec!["gateway.internal".into()]);
    let server = TestServer::start(embedded(), BrokerKind::Embedded, allow).await;
    let topic = server.topic(1).await;
    let base = server.url();
    let port = server.addr.port();
    let evil = format!("evil.example:{port}");

    let refused = browser_publish(&http1(), &base, &topic, &[("host", &evil)]).await;
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(refused.headers()["grpc-status"], "7");
    let body = refused.text().await.expect("a body");
    assert!(body.contains("--allowed-hosts"), "{body}");

    let metrics = http1()
        .get(format!("{base}/metrics"))
        .header("host", &evil)
        .send()
        .await
        .expect("answered");
    assert_eq!(metrics.status(), reqwest::StatusCode::FORBIDDEN);

    // Native gRPC over HTTP/2, with the rebound name as :authority.
    let channel = Endpoint::from_shared(base.clone())
        .expect("url")
        .origin(format!("http://{evil}").parse().expect("uri"))
        .connect()
        .await
        .expect("connects");
    let status = proto::event_gateway_client::EventGatewayClient::new(channel)
        .publish(publish(&topic))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    for host in [
        format!("localhost:{port}"),
        format!("gateway.internal:{port}"),
    ] {
        let served = browser_publish(&http1(), &base, &topic, &[("host", &host)]).await;
        assert_eq!(grpc_web_status(served).await, "0", "{host}");
    }
    server.stop().await;
}

/// With mutual TLS a browser presents the user's certificate on its own: a page on another
/// site must still not reach a service, whether it sends a CORS-simple `text/plain` body
/// or grpc-web; this server's own origin still works. Over HTTP/1.1 and over HTTP/2, which
/// a browser negotiates with a TLS server: tonic-web answers a `text/plain` HTTP/1.1
/// request itself, but passes HTTP/2 through, where tonic runs the call whatever its
/// content type — the request guard is all that stands between such a body and Publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_with_a_client_certificate_are_refused() {
    let tls = TestTls::mutual();
    let server = TestServer::start_tls(embedded(), BrokerKind::Embedded, |_| {}, tls).await;
    let topic = server.topic(1).await;
    let base = format!("https://localhost:{}", server.addr.port());
    for version in [Http::Two, Http::One] {
        let client = reqwest_client(&server, version);
        let simple = |origin: Option<&'static str>| {
            let mut request = client
                .post(format!("{base}/streamgate.v1.EventGateway/Publish"))
                .header("content-type", "text/plain")
                .body(frame(&publish(&topic)).to_vec());
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            request.send()
        };
        let cross_site = simple(Some("https://evil.example"))
            .await
            .expect("answered");
        assert_eq!(cross_site.version(), version.reqwest());
        assert_eq!(
            cross_site.status(),
            reqwest::StatusCode::FORBIDDEN,
            "{version:?}"
        );
        let plain = simple(None).await.expect("answered");
        assert_eq!(
            plain.status(),
            reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{version:?}"
        );

        let foreign = [("origin", "https://evil.example")];
        let refused = browser_publish(&client, &base, &topic, &foreign).await;
        assert_eq!(
            refused.status(),
            reqwest::StatusCode::FORBIDDEN,
            "{version:?}"
        );
        let own = format!("https://localhost:{}", server.addr.port());
        let served = browser_publish(&client, &base, &topic, &[("origin", &own)]).await;
        assert_eq!(grpc_web_status(served).await, "0", "{version:?}");
    }
    server.stop().await;
}

#[derive(Debug, Clone, Copy)]
enum Http {
    One,
    Two,
}

impl Http {
    fn reqwest(self) -> reqwest::Version {
        match self {
            Http::One => reqwest::Version::HTTP_11,
            Http::Two => reqwest::Version::HTTP_2,
        }
    }
}

/// reqwest trusting the test server's CA, presenting its client certificate, resolving
/// `localhost` to it.
fn reqwest_client(server: &TestServer, version: Http) -> reqwest::Client {
    let tls = server.tls.as_ref().expect("TLS");
    let cert = tls.client.as_ref().expect("a client certificate");
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes())
            .expect("identity");
    let builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.ca.pem.as_bytes()).expect("ca"))
        .tls_built_in_root_certs(false)
        .identity(identity)
        .resolve("localhost", server.addr)
        .timeout(Duration::from_secs(30));
    match version {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    }
    .build()
    .expect("http client")
}
