//! `/metrics`: what it counts (gRPC calls by method and code, messages, records by topic,
//! consumer lag), who may read it, how it keeps clients from growing its series, and that a
//! real Prometheus scrapes and queries it (`promtool` checks the page too).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use streamgate::proto::{self, publish_request};
use streamgate_server::Settings;
use streamgate_testkit::{AuthFile, BrokerKind};

use crate::support::{TestServer, eventually, on_each_broker, publish_values, random_name, within};

/// The metrics page, read as Prometheus's 0.0.4 text (what `curl` gets).
pub(crate) async fn scrape(server: &TestServer) -> String {
    scrape_with(server, &[]).await.body
}

/// What a scrape got back.
struct Scrape {
    status: u16,
    content_type: String,
    body: String,
}

async fn scrape_with(server: &TestServer, headers: &[(&str, &str)]) -> Scrape {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the port answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("a body");
    Scrape {
        status,
        content_type,
        body,
    }
}

/// The value of the sample whose name and labels start with `series` (e.g.
/// `grpc_server_handled_total{grpc_service="x"`), summed over every sample that matches.
pub(crate) fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(series))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn gateway(method: &str, rest: &str) -> String {
    format!("{{grpc_service=\"streamgate.v1.EventGateway\",grpc_method=\"{method}\",{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_calls_by_code_messages_and_records_by_topic() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, (0..3).map(|i| format!("v{i}"))).await;
        let refused = client
            .publish(proto::PublishRequest {
                topic: "not a topic".into(),
                payload: Some(publish_request::Payload::Value("v".into())),
                ..Default::default()
            })
            .await
            .expect_err("a bad topic name");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let stream_topic = topic.clone();
        let requests = (0..5).map(move |i| proto::PublishRequest {
            topic: stream_topic.clone(),
            payload: Some(publish_request::Payload::Value(format!("s{i}").into())),
            ..Default::default()
        });
        let results: Vec<_> = client
            .publish_stream(futures::stream::iter(requests))
            .await
            .expect("PublishStream opens")
            .into_inner()
            .collect()
            .await;
        assert_eq!(results.len(), 5);
        let request = proto::SubscribeRequest {
            max_records: Some(8),
            ..crate::support::subscribe_request(
                &topic,
                None,
                Some(proto::start_position::Position::Earliest(true)),
            )
        };
        let mut subscription = client
            .subscribe(request)
            .await
            .expect("subscribes")
            .into_inner();
        while let Some(message) = subscription.next().await {
            message.expect("no error");
        }

        let page = scrape(&server).await;
        let handled = |method: &str, labels: &str| {
            value(
                &page,
                &format!("grpc_server_handled_total{}", gateway(method, labels)),
            )
        };
        assert_eq!(
            handled("Publish", "grpc_type=\"unary\",grpc_code=\"OK\""),
            3.0,
            "{page}"
        );
        assert_eq!(
            handled(
                "Publish",
                "grpc_type=\"unary\",grpc_code=\"InvalidArgument\""
            ),
            1.0
        );
        assert_eq!(
            handled(
                "PublishStream",
                "grpc_type=\"bidi_stream\",grpc_code=\"OK\""
            ),
            1.0
        );
        assert_eq!(
            handled("Subscribe", "grpc_type=\"server_stream\",grpc_code=\"OK\""),
            1.0
        );
        assert_eq!(
            value(
                &page,
                &format!(
                    "grpc_server_msg_received_total{}",
                    gateway("PublishStream", "")
                )
            ),
            5.0
        );
        assert_eq!(
            value(
                &page,
                &format!("grpc_server_msg_sent_total{}", gateway("PublishStream", ""))
            ),
            5.0
        );
        assert_eq!(
            value(
                &page,
                &format!("grpc_server_started_total{}", gateway("Publish", ""))
            ),
            4.0
        );
        assert_eq!(
            value(
                &page,
                &format!(
                    "grpc_server_handling_seconds_count{}",
                    gateway("Publish", "")
                )
            ),
            4.0
        );
        assert_eq!(
            value(
                &page,
                &format!("streamgate_records_published_total{{topic=\"{topic}\"}}")
            ),
            8.0
        );
        assert_eq!(
            value(
                &page,
                &format!("streamgate_records_delivered_total{{topic=\"{topic}\"}}")
            ),
            8.0
        );
        assert_eq!(
            value(
                &page,
                &format!(
                    "streamgate_build_info{{version=\"{}\"}}",
                    env!("CARGO_PKG_VERSION")
                )
            ),
            1.0
        );
        assert!(value(&page, "process_resident_memory_bytes") > 0.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_the_lag_of_an_open_consume_stream_s_group() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        // One record per produce request: Tansu's end offset is exact then.
        for i in 0..8 {
            publish_values(&mut client, &topic, [format!("v{i}")]).await;
        }
        let group = random_name("lag");
        let (requests, rx) = tokio::sync::mpsc::channel(8);
        requests
            .send(proto::ConsumeRequest {
                request: Some(proto::consume_request::Request::Start(
                    proto::ConsumeStart {
                        group: group.clone(),
                        topics: vec![topic.clone()],
                        start: Some(proto::StartPosition {
                            position: Some(proto::start_position::Position::Earliest(true)),
                        }),
                        ..Default::default()
                    },
                )),
            })
            .await
            .expect("queue start");
        let mut responses = client
            .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("Consume opens")
            .into_inner();
        let mut records = Vec::new();
        within(Duration::from_secs(60), "eight records", async {
            while records.len() < 8 {
                if let Some(proto::consume_response::Message::Records(batch)) = responses
                    .next()
                    .await
                    .expect("open")
                    .expect("no error")
                    .message
                {
                    records.extend(batch.records);
                }
            }
        })
        .await;
        // The first two acked: the group commits offset 2, six records behind the end.
        let ack_ids = records[..2].iter().map(|r| r.ack_id.clone()).collect();
        requests
            .send(proto::ConsumeRequest {
                request: Some(proto::consume_request::Request::Ack(proto::AckRequest {
                    ack_ids,
                })),
            })
            .await
            .expect("ack");
        let series = format!(
            "streamgate_consumer_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"0\"}}"
        );
        eventually(
            Duration::from_secs(60),
            "the lag of the group",
            async || value(&scrape(&server).await, &series) == 6.0,
        )
        .await;
        drop(requests);
        while responses.next().await.is_some() {}
        // The consumer is gone, and so is its report.
        eventually(
            Duration::from_secs(30),
            "the lag report to go",
            async || !scrape(&server).await.contains(&series),
        )
        .await;
    })
    .await;
}

/// A server on the embedded broker with its settings changed by `configure`.
async fn embedded_server(configure: impl FnOnce(&mut Settings)) -> TestServer {
    let kafka = std::sync::Arc::new(
        streamgate_server::Kafka::embedded(Vec::new()).expect("embedded broker"),
    );
    TestServer::start(kafka, BrokerKind::Embedded, configure).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_needs_the_metrics_permission_when_auth_is_on() {
    let file = AuthFile::new(&[
        ("scraper", "scrape-token", &["metrics"]),
        ("reader", "read-token", &["topics"]),
    ]);
    let server = embedded_server(|s| file.apply(s)).await;
    let anonymous = scrape_with(&server, &[]).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let reader = scrape_with(&server, &[("authorization", "Bearer read-token")]).await;
    assert_eq!(reader.status, 403);
    assert!(
        reader.body.contains("missing permission metrics"),
        "{}",
        reader.body
    );
    let scraper = scrape_with(&server, &[("authorization", "Bearer scrape-token")]).await;
    assert_eq!(scraper.status, 200);
    assert!(
        scraper
            .content_type
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(
        scraper.body.contains("grpc_server_started_total"),
        "{}",
        scraper.body
    );
    let openmetrics = scrape_with(
        &server,
        &[
            ("authorization", "Bearer scrape-token"),
            ("accept", "application/openmetrics-text; version=1.0.0"),
        ],
    )
    .await;
    assert!(
        openmetrics
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        openmetrics.content_type
    );
    assert!(
        openmetrics.body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_grow_the_series() {
    let server = embedded_server(|s| {
        s.auto_create_topics = true;
        s.metrics_max_label_values = 2;
    })
    .await;
    let mut client = server.client().await;
    let topics: Vec<String> = (0..5).map(|_| random_name("many")).collect();
    for topic in &topics {
        publish_values(&mut client, topic, ["v".to_owned()]).await;
    }
    // A method no service has, over grpc-web.
    let response = reqwest::Client::new()
        .post(format!("{}/made.Up/Method", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("answered");
    assert!(response.status().is_success() || response.status().is_client_error());
    let page = scrape(&server).await;
    let published: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("streamgate_records_published_total{"))
        .collect();
    assert_eq!(published.len(), 3, "two topics and (other): {published:?}");
    assert_eq!(
        value(
            &page,
            "streamgate_records_published_total{topic=\"(other)\"}"
        ),
        3.0
    );
    assert_eq!(value(&page, "streamgate_records_published_total"), 5.0);
    assert!(!page.contains("made.Up"), "no label from a client's path");
    assert_eq!(
        value(
            &page,
            "grpc_server_started_total{grpc_service=\"unknown\",grpc_method=\"unknown\""
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_the_page_on_a_second_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("127.0.0.1:{port}");
    let server = embedded_server(|s| {
        s.metrics_listen = Some(address.parse().expect("a socket address"));
    })
    .await;
    let page = eventually(Duration::from_secs(10), "the metrics port", async || {
        let response = reqwest::get(format!("http://{address}/metrics"))
            .await
            .ok()?;
        response
            .status()
            .is_success()
            .then_some(response.text().await.ok()?)
    })
    .await;
    assert!(page.contains("streamgate_build_info"));
    server.stop().await;
}

/// A Prometheus server scraping one target every second, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Self {
        let program =
            std::env::var("STREAMGATE_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: streamgate\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write the config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let child = Command::new(&program)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program}: {e} — install Debian's prometheus package (the README's test command does), or set STREAMGATE_TEST_PROMETHEUS")
            });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The value of an instant query's first result, if it has one.
    async fn query(&self, promql: &str) -> Option<f64> {
        let answer: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_and_queries_the_server() {
    let server = embedded_server(|_| {}).await;
    let mut client = server.client().await;
    publish_values(&mut client, "R1", ["seen by prometheus".to_owned()]).await;
    let prometheus = Prometheus::start(server.addr);
    eventually(Duration::from_secs(60), "the target up", async || {
        prometheus.query("up{job=\"streamgate\"}").await == Some(1.0)
    })
    .await;
    let published = eventually(Duration::from_secs(30), "a published record", async || {
        prometheus
            .query("sum(streamgate_records_published_total{topic=\"R1\"})")
            .await
            .filter(|v| *v >= 1.0)
    })
    .await;
    assert_eq!(published, 1.0);
    let rate = prometheus
        .query("sum by (grpc_method) (grpc_server_handled_total{grpc_service=\"streamgate.v1.EventGateway\",grpc_method=\"Publish\",grpc_code=\"OK\"})")
        .await;
    assert_eq!(rate, Some(1.0));

    // promtool, from the same package, checks the page against the exposition rules.
    let promtool = std::env::var("STREAMGATE_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let page = scrape(&server).await;
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {promtool}: {e}"));
    use std::io::Write;
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write the page");
    let output = check.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}
