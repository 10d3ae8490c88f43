//! `run`: wires the gateway, reflection, health and grpc-web onto one listener, keeps the
//! server's topics in place, and shuts everything down within a bounded time.

use std::sync::Arc;
use std::time::Duration;

use streamgate::proto::event_gateway_server::EventGatewayServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::analytics::{Hub, HubSettings, Worker, WorkerSettings};
use crate::config::Config;
use crate::gateway::{Gateway, State};
use crate::kafka::{Admin, Kafka, Producer, ProducerSettings};
use crate::log_consumer;
use crate::transform::{Transform, TransformSettings};
use streamgate::topic::TopicName;

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A Kafka client could not be created.
    #[error("could not create a Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Reflection could not be built from the descriptors.
    #[error("could not build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Extra room above the record limit for the rest of a request (topic, headers, framing).
const REQUEST_OVERHEAD: usize = 64 * 1024;

/// Serves on `listener` until `shutdown` is cancelled, then drains within
/// `config.shutdown_timeout`. The binary and the tests both call this.
pub async fn run(
    listener: TcpListener,
    config: Config,
    kafka: &Kafka,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    config.validate().map_err(ServeError::Config)?;
    let producer = Producer::create(
        kafka,
        &ProducerSettings {
            max_message_bytes: config.max_message_bytes,
            linger: config.linger,
            queue_kbytes: 64 * 1024,
        },
    )?;
    let admin = Admin::connect(kafka)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    ensure_topics(kafka, &config, &shutdown, &health).await;
    let supplier_settings = config.supplier_settings().map_err(ServeError::Config)?;
    let supplier = crate::supplier::Supplier::spawn(
        producer.clone(),
        supplier_settings,
        !config.supplier_stopped,
        config.supplier_max_rate,
        config.request_timeout,
        shutdown.clone(),
    );
    let transform = if config.transform {
        let settings = TransformSettings {
            input: TopicName::new(config.transform_input().clone())
                .map_err(|e| ServeError::Config(format!("--transform-input: {e}")))?,
            output: TopicName::new(config.transform_topic.clone())
                .map_err(|e| ServeError::Config(format!("--transform-topic: {e}")))?,
            group: config.transform_group.clone(),
            send_timeout: config.request_timeout,
        };
        Some(Transform::spawn(
            kafka,
            producer.clone(),
            settings,
            shutdown.clone(),
        )?)
    } else {
        None
    };
    let log_consumer = if config.log_consumer {
        let topic = TopicName::new(config.log_topic.clone())
            .map_err(|e| ServeError::Config(format!("--log-topic: {e}")))?;
        Some(log_consumer::spawn(kafka, topic, shutdown.clone())?)
    } else {
        None
    };
    let (hub, hub_task) = Hub::spawn(
        kafka.client_settings(),
        HubSettings {
            input: TopicName::new(config.supplier_topic.clone())
                .map_err(|e| ServeError::Config(format!("--supplier-topic: {e}")))?,
            group: config.analytics_group.clone(),
            topic: TopicName::new(config.stats_topic.clone())
                .map_err(|e| ServeError::Config(format!("--stats-topic: {e}")))?,
            spec: config.window_spec().map_err(ServeError::Config)?,
            tick: config.stats_tick,
            retention: config.stats_retention,
        },
        shutdown.clone(),
    )?;
    let worker = if config.analytics {
        let settings = WorkerSettings {
            input: TopicName::new(config.supplier_topic.clone())
                .map_err(|e| ServeError::Config(format!("--supplier-topic: {e}")))?,
            output: TopicName::new(config.stats_topic.clone())
                .map_err(|e| ServeError::Config(format!("--stats-topic: {e}")))?,
            group: config.analytics_group.clone(),
            transactional_id: config
                .analytics_transactional_id
                .clone()
                .unwrap_or_else(|| {
                    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                    format!("{}-{}-{port}", config.analytics_group, host_name())
                }),
            spec: config.window_spec().map_err(ServeError::Config)?,
            min_duration_ms: config.min_duration,
            tick: config.stats_tick,
            timeout: config.request_timeout,
        };
        Some(
            Worker::spawn(kafka.client_settings(), settings, shutdown.clone()).map_err(|e| {
                ServeError::Config(format!("cannot start the analytics worker: {e}"))
            })?,
        )
    } else {
        None
    };
    let state = Arc::new(State {
        producer: producer.clone(),
        admin,
        client_settings: kafka.client_settings(),
        bootstrap: kafka.bootstrap_servers().to_owned(),
        trust_log_append_time: kafka.embedded_broker().is_none(),
        max_message_bytes: config.max_message_bytes,
        request_timeout: config.request_timeout,
        subscriptions: Arc::new(tokio::sync::Semaphore::new(config.max_subscriptions)),
        max_subscriptions: config.max_subscriptions,
        subscribe_buffer: config.subscribe_buffer,
        supplier,
        hub,
        shutdown: shutdown.clone(),
        tasks: tokio_util::task::TaskTracker::new(),
    });

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(streamgate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(streamgate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let gateway = EventGatewayServer::new(Gateway::new(state))
        .max_decoding_message_size(config.max_message_bytes + REQUEST_OVERHEAD);

    let serve = Server::builder()
        .accept_http1(true)
        .layer(crate::http::cors(&config.cors_origins))
        // The dashboard's files, before grpc-web refuses plain HTTP/1.1 requests.
        .layer(crate::http::DashboardLayer)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(tower::util::MapResponseLayer::new(
            crate::http::as_resource_exhausted::<tonic::body::Body>,
        ))
        .add_service(gateway)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            shutdown.clone().cancelled_owned(),
        );

    tokio::pin!(serve);
    let served = tokio::select! {
        result = &mut serve => result,
        _ = shutdown.cancelled() => {
            // Streams watch the token and end themselves; the timeout covers any that do not
            // (tonic's graceful shutdown would otherwise wait for them forever).
            match tokio::time::timeout(config.shutdown_timeout, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(timeout = ?config.shutdown_timeout, "connections still open after the drain time; closing them");
                    Ok(())
                }
            }
        }
    };
    // A transport failure stops the background tasks too.
    shutdown.cancel();

    // The stages bound their own drain; the timeout is a second guard.
    let stages = async {
        if let Some(transform) = transform {
            transform.stopped().await;
        }
        if let Some(log_consumer) = log_consumer {
            let _ = log_consumer.await;
        }
        if let Some(worker) = worker {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        let _ = hub_task.await;
    };
    if tokio::time::timeout(config.shutdown_timeout, stages)
        .await
        .is_err()
    {
        tracing::warn!("background stages still stopping after the drain time");
    }

    let in_flight = producer.in_flight();
    let flush_timeout = config.shutdown_timeout;
    let flushed = tokio::task::spawn_blocking(move || producer.flush(flush_timeout)).await;
    match flushed {
        Ok(Ok(())) => tracing::info!(records = in_flight, "producer flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, records = in_flight, "producer flush incomplete"),
        Err(e) => tracing::warn!(error = %e, "producer flush failed"),
    }
    Ok(served?)
}

/// Creates R1-R4 when missing. On an external cluster this runs in the background, retried
/// every 5 s, so the server serves even while Kafka is down (calls answer UNAVAILABLE);
/// health says NOT_SERVING for the gateway until the topics exist.
async fn ensure_topics(
    kafka: &Kafka,
    config: &Config,
    shutdown: &CancellationToken,
    health: &tonic_health::server::HealthReporter,
) {
    let Some(background) = BackgroundTopics::new(kafka, config) else {
        // The embedded broker answers at once: its topics exist before the banner.
        let topics = config.topics();
        match kafka
            .ensure_topics(
                &topics,
                config.partitions,
                config.replication_factor,
                config.request_timeout,
            )
            .await
        {
            Ok(()) => health.set_serving::<EventGatewayServer<Gateway>>().await,
            Err(e) => {
                tracing::error!(error = %e, "could not create the server's topics");
                health
                    .set_not_serving::<EventGatewayServer<Gateway>>()
                    .await;
            }
        }
        return;
    };
    // An external cluster may be slow or down: serve at once, create the topics meanwhile.
    health
        .set_not_serving::<EventGatewayServer<Gateway>>()
        .await;
    let (shutdown, health) = (shutdown.clone(), health.clone());
    tokio::spawn(async move {
        let names: Vec<&str> = background.topics.iter().map(String::as_str).collect();
        loop {
            let attempt = background.admin.create_missing(
                &names,
                background.partitions,
                background.replication_factor,
                background.timeout,
            );
            match attempt.await {
                Ok(()) => {
                    tracing::info!(topics = ?names, "the server's topics are in place");
                    health.set_serving::<EventGatewayServer<Gateway>>().await;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not create the server's topics; retrying in 5s")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
}

/// What the background retry needs, owned (the `Kafka` handle stays with the caller).
struct BackgroundTopics {
    admin: Admin,
    topics: Vec<String>,
    partitions: i32,
    replication_factor: i32,
    timeout: Duration,
}

impl BackgroundTopics {
    fn new(kafka: &Kafka, config: &Config) -> Option<Self> {
        // The embedded broker never becomes reachable later if it failed now.
        if kafka.embedded_broker().is_some() {
            return None;
        }
        Some(Self {
            admin: Admin::connect(kafka).ok()?,
            topics: config.topics().iter().map(|t| (*t).to_owned()).collect(),
            partitions: config.partitions,
            replication_factor: config.replication_factor,
            timeout: config.request_timeout,
        })
    }
}

/// The start-up banner: where to connect, and a plain warning for the embedded broker.
pub fn banner(listen: std::net::SocketAddr, kafka: &Kafka) -> String {
    let mut text = format!(
        "streamgate-server {}\n  gRPC + grpc-web : http://{listen}   (try: grpcurl -plaintext {listen} list)\n  dashboard       : http://{listen}/\n",
        env!("CARGO_PKG_VERSION")
    );
    match kafka.embedded_broker() {
        Some(_) => text.push_str(&format!(
            "  Kafka broker    : {} (embedded; try: kcat -b {} -L)\n  WARNING: the embedded broker keeps data in memory only, at most the last ~5 MiB per partition;\n           it is lost when the server stops.\n           Point at a real cluster with --brokers HOST:PORT (or STREAMGATE_BROKERS).\n",
            kafka.bootstrap_servers(),
            kafka.bootstrap_servers()
        )),
        None => text.push_str(&format!("  Kafka broker    : {} (external cluster)\n", kafka.bootstrap_servers())),
    }
    text
}

/// This machine's name, for ids that must differ between servers (transactional ids).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
