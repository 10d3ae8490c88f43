//! A server started through the same `run` as the binary, on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, ListTopicsRequest};
use streamgate_server::{Config, Kafka, Settings};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use streamgate::auth::BearerToken;
use tonic::service::interceptor::InterceptedService;

use crate::tls::TestTls;
use crate::{ADMIN_TOKEN, BrokerKind, eventually, init_logs, random_name, within};

/// How long a new topic may take to show in the server's metadata.
const TOPIC_VISIBLE_WITHIN: Duration = Duration::from_secs(30);

/// The settings of a test server before a test changes them: the defaults of every flag,
/// on a port of its own (`127.0.0.1:0`), with a 20 s request timeout and the transform,
/// the log consumer and the analytics worker off. The embedded broker may run with
/// authentication on (`--insecure-embedded-broker`): the tests share one per process, and
/// the refusal of that combination has a test of its own.
pub fn settings() -> Settings {
    let defaults = Config::try_parse_from(["streamgate-server"]).expect("the defaults parse");
    let mut settings = Settings::resolve(&defaults).expect("the defaults are valid");
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.timeouts.request = Duration::from_secs(20);
    settings.transform.run = false;
    settings.log_consumer = false;
    settings.analytics.worker = false;
    settings.kafka.insecure_embedded = true;
    settings
}

/// [`ADMIN_TOKEN`] when `settings` require a token and know that one (an
/// [`AuthFile`](crate::AuthFile) always does); `None` on an open server.
fn admin_token(settings: &Settings) -> Option<&'static str> {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    let bearer = format!("Bearer {ADMIN_TOKEN}")
        .parse()
        .expect("an ASCII header");
    headers.insert("authorization", bearer);
    let authenticator = &settings.authenticator;
    let known = authenticator.authenticate(&headers, None).is_ok();
    (authenticator.is_required() && known).then_some(ADMIN_TOKEN)
}

/// A running server and the cluster behind it. Dropping it cancels the server; [`stop`]
/// also waits until `run` returned.
///
/// [`stop`]: TestServer::stop
pub struct TestServer {
    /// The address it listens on (gRPC, grpc-web and HTTP).
    pub addr: SocketAddr,
    /// The cluster it serves.
    pub kafka: Arc<Kafka>,
    /// Which kind of broker that cluster is.
    pub kind: BrokerKind,
    /// The token the harness's own calls send: [`ADMIN_TOKEN`] when the server runs with
    /// an auth file (an [`AuthFile`](crate::AuthFile) always has that admin).
    pub admin_token: Option<&'static str>,
    /// With TLS on: the files it serves, and what the harness's clients trust and present.
    pub tls: Option<Arc<TestTls>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `kafka` with [`settings`] changed by `configure`. The background
    /// stages (transform, log consumer, analytics) are off unless `configure` turns them on:
    /// they have tests of their own, on topics and groups of their own; elsewhere they
    /// would only add load on the shared real broker.
    pub async fn start(
        kafka: Arc<Kafka>,
        kind: BrokerKind,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_with(kafka, kind, configure, None).await
    }

    /// [`TestServer::start`] with TLS on, serving `tls`'s files (with mutual TLS when it has
    /// a client CA); [`url`](TestServer::url) says `https` and [`client`](TestServer::client)
    /// trusts `tls`'s CA and presents its client certificate. `configure` sees the TLS
    /// settings already in place.
    pub async fn start_tls(
        kafka: Arc<Kafka>,
        kind: BrokerKind,
        configure: impl FnOnce(&mut Settings),
        tls: TestTls,
    ) -> Self {
        Self::start_with(kafka, kind, configure, Some(Arc::new(tls))).await
    }

    async fn start_with(
        kafka: Arc<Kafka>,
        kind: BrokerKind,
        configure: impl FnOnce(&mut Settings),
        tls: Option<Arc<TestTls>>,
    ) -> Self {
        init_logs();
        let mut settings = settings();
        if let Some(tls) = &tls {
            tls.apply(&mut settings);
        }
        configure(&mut settings);
        let admin_token = admin_token(&settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let (stop, cluster) = (shutdown.clone(), kafka.clone());
        let task = tokio::spawn(async move {
            streamgate_server::run(listener, settings, &cluster, stop.cancelled_owned())
                .await
                .expect("server runs");
        });
        Self {
            addr,
            kafka,
            kind,
            admin_token,
            tls,
            shutdown,
            task: Some(task),
        }
    }

    /// The gRPC URL of the server: `https://127.0.0.1:PORT` with TLS (its certificate names
    /// `localhost` and `127.0.0.1`), `http://127.0.0.1:PORT` without.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// A connected channel: over TLS when the server has it.
    pub async fn channel(&self) -> Channel {
        let connect = async {
            match &self.tls {
                Some(tls) => tls.client_tls().channel(self.addr).await,
                None => {
                    Channel::from_shared(self.url())
                        .expect("url")
                        .connect()
                        .await
                }
            }
        };
        within(Duration::from_secs(30), "the client connects", connect)
            .await
            .expect("client connects")
    }

    /// A connected client without a token.
    pub async fn client(&self) -> EventGatewayClient<Channel> {
        EventGatewayClient::new(self.channel().await)
    }

    /// A connected client sending `token` (or none).
    pub async fn client_with_token(
        &self,
        token: Option<&str>,
    ) -> EventGatewayClient<InterceptedService<Channel, BearerToken>> {
        let token = BearerToken::optional(token).expect("test tokens are ASCII");
        EventGatewayClient::with_interceptor(self.channel().await, token)
    }

    /// Creates a fresh topic with a random name and `partitions` partitions, and returns
    /// once the server's metadata shows it.
    pub async fn topic(&self, partitions: i32) -> String {
        self.topic_named("t", partitions).await
    }

    /// [`topic`](Self::topic) with a name that starts with `prefix-` (for a schema glob).
    pub async fn topic_named(&self, prefix: &str, partitions: i32) -> String {
        let name = random_name(prefix);
        self.kafka
            .ensure_topics(&[&name], partitions, 1, Duration::from_secs(30))
            .await
            .expect("create test topic");
        self.wait_for_topic(&name, partitions).await;
        name
    }

    /// Waits until ListTopics shows `topic` with `partitions` partitions, each with a
    /// leader. A real broker's metadata may lag a creation a little; the embedded broker's
    /// shows it at once.
    pub async fn wait_for_topic(&self, topic: &str, partitions: i32) {
        let mut client = self.client_with_token(self.admin_token).await;
        eventually(
            TOPIC_VISIBLE_WITHIN,
            &format!("topic {topic} with {partitions} partitions in the server's metadata"),
            async || {
                let listed = client
                    .list_topics(ListTopicsRequest::default())
                    .await
                    .map_err(|status| format!("ListTopics failed: {status:?}"))?
                    .into_inner();
                match listed.topics.into_iter().find(|t| t.name == topic) {
                    Some(proto::TopicInfo { partitions: p, .. })
                        if p.len() == partitions as usize && p.iter().all(|p| p.leader >= 0) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("listed as {other:?}")),
                }
            },
        )
        .await;
    }

    /// Waits until the server reports SERVING for the EventGateway. On an external cluster
    /// it creates its topics (R1–R4 and the rest) in the background after it starts
    /// listening, and a test that publishes to one of them before then gets NOT_FOUND.
    pub async fn wait_serving(&self) {
        use tonic_health::pb::health_check_response::ServingStatus;
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        eventually(
            TOPIC_VISIBLE_WITHIN,
            "the server SERVING (its topics created)",
            async || {
                let request = tonic_health::pb::HealthCheckRequest {
                    service: "streamgate.v1.EventGateway".into(),
                };
                let status = health
                    .check(request)
                    .await
                    .map_err(|status| format!("health check failed: {status:?}"))?
                    .into_inner()
                    .status();
                match status {
                    ServingStatus::Serving => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }

    /// Stops the server and waits until `run` returned (bounded).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            within(Duration::from_secs(30), "the server stops", task)
                .await
                .expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
