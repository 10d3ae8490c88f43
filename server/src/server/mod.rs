//! The composition root: a [`Server`] is built from typed [`Settings`] once — Kafka
//! clients, the server's topics, the background stages, the service and its layers — then
//! served on a listener until a shutdown future resolves, then drained within
//! `--shutdown-timeout`. Read [`Server::build`] and [`Server::serve`] as the table of contents
//! of the server; each step lives in the module it names.

mod banner;
mod bootstrap;
mod drain;
mod listen;
mod router;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::auth::Access;
use crate::connections::{self, Gate};
use crate::gateway::State;
use crate::kafka::{Kafka, Manager, Producer, ProducerSettings, TopicCreator};
use crate::metrics::{self, Metrics, MetricsEndpoint};
use crate::settings::{InvalidSetting, Settings};
use crate::stages::{StageContext, StageError, Stages};
use crate::tls;

pub use banner::banner;
pub use listen::url;

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] InvalidSetting),
    /// A Kafka client could not be created.
    #[error("could not create a Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A background stage could not start.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// Reflection could not be built from the descriptors.
    #[error("could not build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The Connect protocol's descriptors could not be read.
    #[error("could not read the API's descriptors for Connect: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    /// A method the HTTP routes are built on is not in the API.
    #[error("the API has no {0} method")]
    MissingMethod(&'static str),
    /// A listener failed.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server built from its settings: its Kafka clients made, its stages running, its service
/// assembled — nothing accepted yet. Dropping it unserved stops what it started.
pub struct Server {
    settings: Settings,
    producer: Producer,
    stages: Stages,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    access: Arc<Access>,
    health: HealthReporter,
    tls: Option<tls::Configs>,
    metrics_listener: Option<TcpListener>,
    connections: Arc<connections::Counters>,
    tasks: TaskTracker,
    root: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl Server {
    /// Builds the server that will listen on `listen` (the bound address: its port is part
    /// of the analytics worker's transactional id) over `kafka`.
    pub async fn build(
        settings: Settings,
        kafka: &Kafka,
        listen: SocketAddr,
    ) -> Result<Self, ServeError> {
        settings.check_embedded_broker(kafka.embedded_broker().is_some())?;
        if kafka.embedded_broker().is_some() && settings.authenticator.is_required() {
            tracing::warn!(
                bootstrap = kafka.bootstrap_servers(),
                "--insecure-embedded-broker: the embedded broker's port takes any local process \
                 without authentication"
            );
        }
        descriptors(&settings);
        let connections = Arc::new(connections::Counters::default());
        let root = CancellationToken::new();
        let stop_on_drop = root.clone().drop_guard();
        let tasks = TaskTracker::new();
        let producer = Producer::create(kafka, &producer_settings(&settings))?;

        let health = HealthReporter::new();
        let topics = bootstrap::ServerTopics::of(&settings)?;
        bootstrap::bootstrap(kafka, topics, &health, &tasks, &root).await;

        let cx = StageContext {
            kafka,
            producer: &producer,
            tasks: &tasks,
            shutdown: &root,
            port: listen.port(),
        };
        let stages = Stages::start(&settings, &cx)?;
        let topic_creator = TopicCreator::new(kafka).map_err(|e| StageError {
            stage: "topic creator",
            detail: e.to_string(),
        })?;
        let manager = Manager::new(kafka).map_err(|e| StageError {
            stage: "admin client",
            detail: e.to_string(),
        })?;
        let access = Arc::new(Access::new(settings.reserved()));
        let state = State::new(
            &settings,
            &cx,
            &stages,
            access.clone(),
            topic_creator,
            manager,
        )?;
        let metrics = Metrics::new(metrics::Sources {
            records: state.records.clone(),
            stages: stages.counters(),
            admission: state.admission.clone(),
            lag: kafka.lag().clone(),
            connections: connections.clone(),
            quotas: state.quotas.clone(),
            max_label_values: settings.metrics_max_label_values,
        });
        let tls = settings
            .tls
            .as_ref()
            .map(|tls| tls::watch(tls, &tasks, &root));
        settings.schemas.reload_on_hangup(&tasks, root.clone());
        let metrics_listener = match settings.metrics_listen {
            Some(address) => Some(TcpListener::bind(address).await?),
            None => None,
        };
        Ok(Self {
            settings,
            producer,
            stages,
            state,
            metrics,
            access,
            health,
            tls,
            metrics_listener,
            connections,
            tasks,
            root,
            _stop_on_drop: stop_on_drop,
        })
    }

    /// Serves on `listener` until `shutdown` resolves (or the transport fails), then drains:
    /// open connections, the stages, every tracked task and the producer's flush, all within
    /// `--shutdown-timeout`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let root = self.root.clone();
        self.tasks.spawn(cancel_when(shutdown, root.clone()));
        let scrapes = MetricsEndpoint::layer(
            self.metrics.clone(),
            self.access.clone(),
            self.settings.authenticator.clone(),
        );
        let caps = self.settings.http.connections;
        if let Some(listener) = self.metrics_listener {
            let gate = Gate::new(caps, self.connections.clone());
            let incoming = listen::incoming(
                listener,
                "/metrics",
                gate,
                self.tls.clone(),
                &self.tasks,
                &root,
            )?;
            let guard = router::guard(&self.settings);
            let serving = router::serve_metrics(incoming, guard, scrapes.clone(), root.clone());
            self.tasks.spawn(serving);
        }
        let what = "gRPC, grpc-web, the dashboard and /metrics";
        let gate = Gate::new(caps, self.connections.clone());
        let incoming = listen::incoming(listener, what, gate, self.tls, &self.tasks, &root)?;
        let routes = router::Routes {
            state: self.state,
            health: HealthServer::new(HealthService::from_health_reporter(self.health)),
            calls: self.metrics.grpc_layer(),
            scrapes,
        };
        let serve = router::serve(incoming, &self.settings, routes, &root)?;
        let (served, deadline) =
            drain::serve_until_drained(serve, &root, self.settings.timeouts.shutdown).await;
        // A transport failure stops the background work too.
        root.cancel();
        drain::stages_and_tasks(self.stages, &self.tasks, deadline).await;
        drain::flush(self.producer, deadline).await;
        Ok(served?)
    }
}

/// Builds a server from `settings` and serves it on `listener` until `shutdown` resolves:
/// [`Server::build`] then [`Server::serve`].
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    kafka: &Kafka,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listen = listener.local_addr()?;
    Server::build(settings, kafka, listen)
        .await?
        .serve(listener, shutdown)
        .await
}

/// Cancels `root` when `shutdown` resolves, unless the server stopped first.
async fn cancel_when(shutdown: impl Future<Output = ()>, root: CancellationToken) {
    tokio::select! {
        () = shutdown => root.cancel(),
        () = root.cancelled() => {}
    }
}

fn producer_settings(settings: &Settings) -> ProducerSettings {
    ProducerSettings {
        max_message_bytes: settings.limits.max_message_bytes,
        linger: settings.linger,
        queue_kbytes: 64 * 1024,
        auto_create_topics: settings.auto_create_topics,
    }
}

/// Raises the soft descriptor limit to the hard one, and warns when the connection caps
/// would still run into it (then the kernel, not the caps, refuses connections).
fn descriptors(settings: &Settings) {
    let Some(limit) = connections::raise_descriptor_limit() else {
        return;
    };
    let ports = if settings.metrics_listen.is_some() {
        2
    } else {
        1
    };
    let wanted = (settings.http.connections.total as u64)
        .saturating_mul(ports)
        .saturating_add(connections::DESCRIPTOR_RESERVE);
    if wanted > limit {
        tracing::warn!(
            limit,
            max_connections = settings.http.connections.total,
            "the open-file limit is below --max-connections plus a reserve: lower --max-connections, or raise the hard limit (ulimit -Hn, LimitNOFILE=)"
        );
    }
}
