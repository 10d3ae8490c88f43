//! `run`, the composition root: settings → Kafka → stages → router → serve → drain. Read it
//! as the table of contents of the server; each step lives in the module it names.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::FutureExt;
use streamgate::proto::event_gateway_server::EventGatewayServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::auth::AuthLayer;
use crate::config::Config;
use crate::gateway::{Gateway, State};
use crate::kafka::bootstrap::{self, ServerTopics};
use crate::kafka::{Kafka, Producer, ProducerSettings};
use crate::metrics::{self, GrpcMetricsLayer, Metrics, MetricsEndpoint, MetricsEndpointLayer};
use crate::settings::{InvalidSetting, Settings};
use crate::stages::{StageContext, Stages};
use crate::{drain, http, tls};

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A flag is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] InvalidSetting),
    /// A Kafka client could not be created.
    #[error("could not create a Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A background stage could not start.
    #[error("could not start {0}")]
    Stage(String),
    /// Reflection could not be built from the descriptors.
    #[error("could not build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The listener failed.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Extra room above the record limit for the rest of a request (topic, headers, framing).
const REQUEST_OVERHEAD: usize = 64 * 1024;

/// Serves on `listener` until `shutdown` is cancelled, then drains within
/// `--shutdown-timeout`. The binary and the tests both call this.
pub async fn run(
    listener: TcpListener,
    config: Config,
    kafka: &Kafka,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let settings = Settings::resolve(&config)?;
    let port = listener.local_addr()?.port();
    let tasks = TaskTracker::new();
    let producer = Producer::create(kafka, &producer_settings(&settings))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    bootstrap::bootstrap(kafka, server_topics(&settings), &health, &tasks, &shutdown).await;

    let stages = Stages::start(
        &settings,
        &StageContext {
            kafka,
            producer: &producer,
            tasks: &tasks,
            shutdown: &shutdown,
            port,
        },
    )?;
    let topic_creator = bootstrap::TopicCreator::new(kafka)
        .map_err(|e| ServeError::Stage(format!("the topic creator: {e}")))?;
    let state = State::new(
        kafka,
        &settings,
        topic_creator,
        producer.clone(),
        &stages,
        &shutdown,
        &tasks,
    )?;
    let metrics = Metrics::new(metrics::Sources {
        records: state.records.clone(),
        stages: stages.counters(),
        state: state.clone(),
        lag: kafka.lag().clone(),
        max_label_values: settings.metrics_max_label_values,
    });
    let scrapes = MetricsEndpoint::layer(
        metrics.clone(),
        state.clone(),
        settings.auth.authenticator.clone(),
    );

    let tls = match &settings.tls {
        Some(tls_settings) => {
            Some(tls::watch(tls_settings, &tasks, &shutdown).map_err(InvalidSetting::from)?)
        }
        None => None,
    };
    if let Some(address) = settings.metrics_listen {
        let listener = TcpListener::bind(address).await?;
        let incoming = listen(listener, "/metrics", tls.clone(), &tasks, &shutdown)?;
        tasks.spawn(serve_metrics(incoming, scrapes.clone(), shutdown.clone()));
    }
    let what = "gRPC, grpc-web, the dashboard and /metrics";
    let incoming = listen(listener, what, tls, &tasks, &shutdown)?;
    let serve = serve(
        incoming,
        &settings,
        state,
        health_service,
        (metrics.grpc_layer(), scrapes),
        &shutdown,
    )?;
    let (served, deadline) =
        drain::serve_until_drained(serve, &shutdown, settings.timeouts.shutdown).await;
    // A transport failure stops the background work too.
    shutdown.cancel();
    drain::stages_and_tasks(stages, &tasks, deadline).await;
    drain::flush(producer, deadline).await;
    Ok(served?)
}

fn producer_settings(settings: &Settings) -> ProducerSettings {
    ProducerSettings {
        max_message_bytes: settings.limits.max_message_bytes,
        linger: settings.linger,
        queue_kbytes: 64 * 1024,
        auto_create_topics: settings.auto_create_topics,
    }
}

fn server_topics(settings: &Settings) -> ServerTopics {
    ServerTopics {
        names: settings.topics_to_create().into_iter().cloned().collect(),
        partitions: settings.topics.partitions,
        replication_factor: settings.topics.replication_factor,
        timeout: settings.timeouts.request,
    }
}

/// What the port serves: plain TCP connections, or TLS streams handshaken by [`tls`].
enum Connections {
    Plain(TcpIncoming),
    Tls(tls::Incoming),
}

/// Turns a listener into a port's connections: TLS (with the certificates `tls` holds,
/// reloaded when their files change) when `--tls-cert` is given, plain TCP otherwise.
fn listen(
    listener: TcpListener,
    what: &str,
    tls: Option<tls::Configs>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Connections, ServeError> {
    let addr = listener.local_addr()?;
    let secure = tls.is_some();
    let connections = match tls {
        Some(configs) => Connections::Tls(tls::incoming(listener, configs, tasks, shutdown)),
        // Nagle's algorithm would hold each small HTTP/2 write (a unary response, the tail of
        // a record batch) until the client acknowledges the previous one: on loopback that
        // capped Subscribe at a quarter of kcat's rate with both processes idle.
        None => Connections::Plain(TcpIncoming::from(listener).with_nodelay(Some(true))),
    };
    tracing::info!("serving {what} on {}", url(addr, secure));
    Ok(connections)
}

/// The URL of the port: `https://` with TLS on.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// The one port: gRPC (gateway, health, reflection v1 and v1alpha) behind grpc-web, the
/// dashboard and CORS, with HTTP/2 admission limits; ends when `shutdown` is cancelled.
fn serve(
    incoming: Connections,
    settings: &Settings,
    state: Arc<State>,
    health: HealthServer<impl Health>,
    (calls, scrapes): (GrpcMetricsLayer, MetricsEndpointLayer),
    shutdown: &CancellationToken,
) -> Result<impl Future<Output = Result<(), tonic::transport::Error>>, ServeError> {
    let refusals = state.access.refusals();
    let gateway = EventGatewayServer::new(Gateway::new(state))
        .max_decoding_message_size(settings.limits.max_message_bytes + REQUEST_OVERHEAD);
    let http_settings = &settings.http;
    let router = Server::builder()
        .accept_http1(true)
        .max_concurrent_streams(http_settings.max_concurrent_streams)
        .http2_keepalive_interval(Some(http_settings.keepalive))
        .http2_keepalive_timeout(Some(http_settings.keepalive_timeout))
        .layer(http::cors(&http_settings.cors_origins))
        // The dashboard's files and /metrics, before grpc-web refuses plain HTTP/1.1 requests.
        .layer(http::DashboardLayer::default())
        .layer(scrapes)
        .layer(tonic_web::GrpcWebLayer::new())
        // Every gRPC call, browsers' included, with the status it finally ends with.
        .layer(calls)
        .layer(tower::util::MapResponseLayer::new(
            http::as_resource_exhausted::<tonic::body::Body>,
        ))
        // Below grpc-web: browser calls are authenticated exactly like native gRPC ones.
        .layer(AuthLayer::new(
            settings.auth.authenticator.clone(),
            refusals,
            tls::client_subject,
        ))
        .add_service(gateway)
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    let signal = shutdown.clone().cancelled_owned();
    Ok(match incoming {
        Connections::Plain(tcp) => router
            .serve_with_incoming_shutdown(tcp, signal)
            .left_future(),
        Connections::Tls(tls) => router
            .serve_with_incoming_shutdown(tls, signal)
            .right_future(),
    })
}

/// The `--metrics-listen` port: /metrics (behind the same TLS and authentication as the main
/// port); every other request is a gRPC UNIMPLEMENTED.
async fn serve_metrics(
    incoming: Connections,
    scrapes: MetricsEndpointLayer,
    shutdown: CancellationToken,
) {
    let router = Server::builder()
        .accept_http1(true)
        .layer(scrapes)
        .add_routes(tonic::service::Routes::default());
    let signal = shutdown.cancelled_owned();
    let served = match incoming {
        Connections::Plain(tcp) => router.serve_with_incoming_shutdown(tcp, signal).await,
        Connections::Tls(tls) => router.serve_with_incoming_shutdown(tls, signal).await,
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "the --metrics-listen port failed");
    }
}

/// A reflection builder over every served proto; grpcurl 1.8 asks for v1alpha, newer
/// clients for v1.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    [
        streamgate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .fold(
        tonic_reflection::server::Builder::configure(),
        |builder, set| builder.register_encoded_file_descriptor_set(set),
    )
}
