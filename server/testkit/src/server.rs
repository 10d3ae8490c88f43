//! A server started through the same `run` as the binary, on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{self, ListTopicsRequest};
use streamgate_server::{Config, Kafka};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use streamgate::auth::BearerToken;
use tonic::service::interceptor::InterceptedService;

use crate::tls::TestTls;
use crate::{ADMIN_TOKEN, BrokerKind, eventually, init_logs, random_name, within};

/// How long a new topic may take to show in the server's metadata.
const TOPIC_VISIBLE_WITHIN: Duration = Duration::from_secs(30);

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
    /// an `--auth-file` (an [`AuthFile`](crate::AuthFile) always has that admin).
    pub admin_token: Option<&'static str>,
    /// With TLS on: the files it serves, and what the harness's clients trust and present.
    pub tls: Option<Arc<TestTls>>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server over `kafka` with extra flags. The background stages (transform,
    /// log consumer, analytics) are off unless `extra_args` turn them on: they have tests
    /// of their own, on topics and groups of their own; elsewhere they would only add load
    /// on the shared real broker. Later flags override earlier ones.
    pub async fn start(kafka: Arc<Kafka>, kind: BrokerKind, extra_args: &[&str]) -> Self {
        Self::start_with(kafka, kind, extra_args, None).await
    }

    /// [`TestServer::start`] with TLS on, serving `tls`'s files (with mutual TLS when it has
    /// a client CA); [`url`](TestServer::url) says `https` and [`client`](TestServer::client)
    /// trusts `tls`'s CA and presents its client certificate.
    pub async fn start_tls(
        kafka: Arc<Kafka>,
        kind: BrokerKind,
        extra_args: &[&str],
        tls: TestTls,
    ) -> Self {
        let mut args = tls.server_args();
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_with(kafka, kind, &args, Some(Arc::new(tls))).await
    }

    async fn start_with(
        kafka: Arc<Kafka>,
        kind: BrokerKind,
        extra_args: &[&str],
        tls: Option<Arc<TestTls>>,
    ) -> Self {
        init_logs();
        let mut args = vec![
            "streamgate-server",
            "--listen",
            "127.0.0.1:0",
            "--request-timeout",
            "20s",
            "--transform",
            "false",
            "--log-consumer",
            "false",
            "--analytics",
            "false",
        ];
        args.extend_from_slice(extra_args);
        let admin_token = extra_args.contains(&"--auth-file").then_some(ADMIN_TOKEN);
        let config = Config::try_parse_from(args).expect("test config parses");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let (token, cluster) = (shutdown.clone(), kafka.clone());
        let task = tokio::spawn(async move {
            streamgate_server::run(listener, config, &cluster, token)
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
        let name = random_name("t");
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
