//! Server-Sent Events, as `curl -N` reads them: `/analytics` in the shape the original
//! application's page reads, `/v1/stats` in canonical JSON, both behind the same
//! authentication as gRPC.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use streamgate_server::Settings;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::analytics::supplier_counting;
use crate::support::{TestServer, on_each_broker, on_each_broker_with, publish_values, within};

/// An SSE event: its id and data.
#[derive(Debug)]
pub(crate) struct Event {
    pub id: String,
    pub data: Value,
}

/// `curl -N` on `path` until `count` events came, or until the stream ends; `headers` are
/// `-H` values, or curl options of their own when they start with `-` (`-b jar`). Over TLS
/// curl trusts the test CA.
pub(crate) async fn events(
    server: &TestServer,
    path: &str,
    headers: &[&str],
    count: usize,
) -> Vec<Event> {
    let mut command = tokio::process::Command::new("curl");
    command.args(["-s", "-N", "--max-time", "60"]);
    if let Some(tls) = &server.tls {
        command.arg("--cacert").arg(&tls.ca.path);
    }
    for header in headers {
        match header.split_once(' ') {
            Some((option, value)) if option.starts_with('-') => command.args([option, value]),
            _ => command.args(["-H", header]),
        };
    }
    let mut child = command
        .arg(format!("{}{path}", server.url()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("curl runs (apt-get install curl)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut read = Vec::new();
    let (mut id, mut data) = (None, None);
    within(Duration::from_secs(60), "the events", async {
        while read.len() < count {
            let Some(line) = lines.next_line().await.expect("curl's output") else {
                break;
            };
            if let Some(value) = line.strip_prefix("id: ") {
                id = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(value).expect("JSON data"));
            } else if line.is_empty()
                && let (Some(id), Some(data)) = (id.take(), data.take())
            {
                read.push(Event { id, data });
            }
        }
    })
    .await;
    read
}

/// `/analytics` sends `{"P1":n,"P2":m}` events, their ids the time each was computed,
/// until the supplier's pages show; `/v1/stats` sends whole PageStats messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_streams_the_seed_s_page_counts() {
    on_each_broker_with(supplier_counting("sse"), |server| async move {
        let mut counted = false;
        for _ in 0..10 {
            let read = events(&server, "/analytics", &[], 25).await;
            assert_eq!(read.len(), 25, "the stream lasts");
            let ids: Vec<i64> = read
                .iter()
                .map(|e| e.id.parse().expect("a number"))
                .collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
            for event in &read {
                let counts = event.data.as_object().expect("an object of pages");
                assert!(counts.values().all(Value::is_u64), "{counts:?}");
            }
            if read.iter().any(|e| e.data["P1"].as_u64() > Some(0)) {
                counted = true;
                break;
            }
        }
        assert!(counted, "the supplier's P1 visits are counted");
        let stats = events(&server, "/v1/stats?rolling=10s", &[], 2).await;
        assert_eq!(stats[0].data["rolling"], "10s");
        assert!(stats[0].data["pages"].is_array(), "{:?}", stats[0]);
        let page = crate::metrics::scrape(&server).await;
        let watches = crate::metrics::value(
            &page,
            "grpc_server_started_total{grpc_service=\"streamgate.v1.EventGateway\",grpc_method=\"WatchPageStats\",grpc_type=\"server_stream\",protocol=\"sse\"}",
        );
        assert!(watches >= 2.0, "SSE streams are counted as such: {watches}");
        server.stop().await;
    })
    .await;
}

/// With authentication on, the SSE routes need a token with the `stats` permission, in the
/// Authorization header as every other call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_needs_the_token_and_the_permission() {
    let file = streamgate_testkit::AuthFile::new(&[
        ("viewer", "viewer-token", &["stats"]),
        ("lister", "lister-token", &["topics"]),
    ]);
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let client = reqwest::Client::new();
        let get = |token: Option<&str>| {
            let mut request = client.get(format!("{}/analytics", server.url()));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        for (token, status, code) in [
            (None, 401, "unauthenticated"),
            (Some("lister-token"), 403, "permission_denied"),
        ] {
            let refused = get(token).await.expect("answered");
            assert_eq!(refused.status(), status, "{token:?}");
            let body = refused.bytes().await.expect("a body");
            let error: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(error["code"], code, "{error}");
        }
        let read = events(
            &server,
            "/v1/stats",
            &["authorization: Bearer viewer-token"],
            1,
        )
        .await;
        assert_eq!(read.len(), 1);
        server.stop().await;
    })
    .await;
}

/// A records stream that the server ends (`max_records`) is resumed with the last event's
/// id as `Last-Event-ID`, as a browser's EventSource does on its own: every record comes
/// exactly once over the two streams, and only the fields asked for (with the partition and
/// offset the ids need).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_stream_resumes_exactly_from_its_last_event_id() {
    on_each_broker(async |server| {
        let topic = server.topic(3).await;
        let mut client = server.client().await;
        let values: Vec<String> = (0..9).map(|i| format!("v{i}")).collect();
        publish_values(&mut client, &topic, values.clone()).await;
        let path = format!("/v1/topics/{topic}/records?from=earliest&fields=value");
        let first = events(&server, &format!("{path}&max_records=4"), &[], 5).await;
        assert_eq!(
            first.len(),
            4,
            "the server ended the stream after 4 records"
        );
        let last = format!("last-event-id: {}", first[3].id);
        let rest = events(&server, &path, &[&last], 5).await;
        let mut seen: Vec<String> = first
            .iter()
            .chain(&rest)
            .map(|e| {
                let fields = e.data.as_object().expect("a record");
                let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
                names.sort_unstable();
                assert_eq!(names, ["offset", "partition", "value"], "{:?}", e.data);
                let value = fields["value"].as_str().expect("base64");
                let bytes =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value)
                        .expect("base64");
                String::from_utf8(bytes).expect("UTF-8")
            })
            .collect();
        seen.sort();
        assert_eq!(seen, values, "no gap and no repeat");
        server.stop().await;
    })
    .await;
}

/// The records stream takes `filter=` and `decode=true`: only matching records come, each
/// with its value as JSON under `decoded` (cut down to `fields=decoded.amount`); a bad filter
/// is a 400 with the filter's message before any event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_stream_filters_and_decodes() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let values: Vec<String> = [300, 1200, 50, 4000]
            .iter()
            .map(|amount| format!(r#"{{"amount": {amount}, "currency": "EUR"}}"#))
            .collect();
        publish_values(&mut client, &topic, values).await;
        let path = format!(
            "/v1/topics/{topic}/records?from=earliest&decode=true&fields=decoded.amount\
             &max_records=2&filter=value.amount%20%3E%201000"
        );
        let large = events(&server, &path, &[], 3).await;
        let amounts: Vec<&serde_json::Value> = large.iter().map(|e| &e.data["decoded"]).collect();
        assert_eq!(
            amounts,
            [
                &serde_json::json!({"amount": 1200.0}),
                &serde_json::json!({"amount": 4000.0})
            ],
            "{large:?}"
        );
        let (status, body) = crate::connect::curl(&[&format!(
            "{}/v1/topics/{topic}/records?filter=value.amount%20%3E",
            server.url()
        )])
        .await;
        assert_eq!(status, 400, "{body:?}");
        assert!(
            String::from_utf8_lossy(&body).contains("filter: syntax error at 1:"),
            "{body:?}"
        );
        server.stop().await;
    })
    .await;
}
