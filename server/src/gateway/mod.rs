//! The `streamgate.v1.EventGateway` service: request handlers that validate, apply the
//! call's deadline and delegate to one module per RPC family; and `streamgate.v1.AdminService`
//! ([`admin`]) over the same state.

mod admin;
mod consume;
mod deadline;
pub(crate) mod error;
mod event_session;
mod known_topics;
mod live_groups;
mod publish;
mod publish_stream;
pub(crate) mod select;
mod stats;
mod subscribe;

use std::sync::Arc;
use std::time::Duration;

use streamgate::proto::event_gateway_server::EventGateway;
use streamgate::proto::{
    ConsumeRequest, ControlSupplierRequest, ListTopicsRequest, ListTopicsResponse,
    OpenEventSessionRequest, OpenEventSessionResponse, PartitionInfo, PublishRequest,
    PublishResponse, SubscribeRequest, SupplierAction, SupplierStatus, TopicInfo,
    WatchPageStatsRequest,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::admission::{Admission, Slot};
use crate::auth::{Access, Expiring, Principal, Sessions};
use crate::gateway::error::GatewayError;
use crate::kafka::{Admin, ClientSettings, Manager, Producer, TopicCreator};
use crate::metrics::RecordMetrics;
use crate::quota::Quotas;
use crate::settings::{Limits, Settings};
use crate::stages::{StageContext, Stages};
use crate::supplier::ControlError;

pub use admin::AdminApi;
pub use consume::ConsumeStream;
#[cfg(feature = "fuzz")]
pub use deadline::parse_grpc_timeout;
pub use publish_stream::PublishResultStream;
pub use subscribe::SubscribeStream;

/// What every handler shares.
pub struct State {
    /// The shared idempotent producer.
    pub producer: Producer,
    /// Metadata and admin client.
    pub admin: Admin,
    /// Settings for the consumers created per subscription.
    pub client_settings: ClientSettings,
    /// How long their fetches may wait at the broker (`--subscribe-fetch-wait`).
    pub fetch_wait: Duration,
    /// Bootstrap servers, for error messages.
    pub bootstrap: String,
    /// Whether a LogAppendTime in a produce acknowledgement is real. librdkafka's mock
    /// broker reports a constant one (1234 ms) for its CreateTime topics, so with the
    /// embedded broker the CreateTime we sent is the record's timestamp.
    pub trust_log_append_time: bool,
    /// Request and stream limits.
    pub limits: Limits,
    /// Deadline of a call whose client set none.
    pub request_timeout: Duration,
    /// The stream slots every long-lived stream takes before it is served.
    pub admission: Arc<Admission>,
    /// The PageEvent supplier.
    pub supplier: crate::supplier::Supplier,
    /// The stats hub behind WatchPageStats.
    pub hub: crate::analytics::Hub,
    /// Cancelled when the server shuts down; every stream watches it.
    pub shutdown: CancellationToken,
    /// Every task a request spawns (stream sessions, watchers, readers, consumer closes),
    /// so that the drain can wait for all of them.
    pub tasks: TaskTracker,
    /// The permission checks.
    pub access: Arc<Access>,
    /// Whether Publish may create a missing topic (`--auto-create-topics`).
    pub auto_create_topics: bool,
    /// Topics known to exist, so that Publish to a missing one is NOT_FOUND at once.
    pub known_topics: known_topics::KnownTopics,
    /// Where Consume streams put records that used up their delivery attempts.
    pub dead_letter_topics: consume::DeadLetterTopics,
    /// Each principal's rate quotas.
    pub quotas: Arc<Quotas>,
    /// Records published and delivered, for the metrics.
    pub records: RecordMetrics,
    /// EventSource sessions, which OpenEventSession opens.
    pub sessions: Arc<Sessions>,
    /// Topic and group administration, for AdminService.
    pub manager: Manager,
    /// The groups of this server's streams.
    pub live_groups: live_groups::LiveGroups,
    /// Partitions of a topic created without a count (`--partitions`).
    pub default_partitions: i32,
    /// The per-topic schemas in force.
    pub schemas: Arc<crate::schema::Live>,
}

impl State {
    /// The handlers' state over the running server's parts: `cx` as the stages run in,
    /// `stages` for the supplier and the hub.
    pub fn new(
        settings: &Settings,
        cx: &StageContext<'_>,
        stages: &Stages,
        access: Arc<Access>,
        topic_creator: TopicCreator,
        manager: Manager,
    ) -> Result<Arc<Self>, rdkafka::error::KafkaError> {
        let kafka = cx.kafka;
        let limits = settings.limits;
        Ok(Arc::new(Self {
            producer: cx.producer.clone(),
            admin: Admin::connect(&kafka.client_settings())?,
            client_settings: kafka.client_settings(),
            fetch_wait: settings.subscribe_fetch_wait.unwrap_or(
                // The embedded broker answers a waiting fetch only at its end; Kafka at once.
                if kafka.embedded_broker().is_some() {
                    Duration::from_millis(5)
                } else {
                    Duration::from_millis(500)
                },
            ),
            bootstrap: kafka.bootstrap_servers().to_owned(),
            trust_log_append_time: kafka.embedded_broker().is_none(),
            limits,
            request_timeout: settings.timeouts.request,
            admission: Admission::new(&limits),
            supplier: stages.supplier.clone(),
            hub: stages.hub.clone(),
            shutdown: cx.shutdown.clone(),
            tasks: cx.tasks.clone(),
            access,
            auto_create_topics: settings.auto_create_topics,
            known_topics: known_topics::KnownTopics::default(),
            dead_letter_topics: consume::DeadLetterTopics::new(
                topic_creator,
                settings.topics.partitions,
                settings.topics.replication_factor,
                settings.limits.max_dead_letter_topics,
            ),
            records: RecordMetrics::new(settings.metrics_max_label_values),
            quotas: Quotas::new(settings.limits.quotas),
            sessions: Arc::new(Sessions::new(
                settings.event_sessions,
                settings.tls.is_some(),
            )),
            manager,
            live_groups: live_groups::LiveGroups::default(),
            default_partitions: settings.topics.partitions,
            schemas: settings.schemas.clone(),
        }))
    }

    /// The bounds on streams' filters and decoding.
    pub fn value_limits(&self) -> select::ValueLimits {
        select::ValueLimits {
            filter: self.limits.filter,
            decode: self.limits.decode,
        }
    }

    /// Waits as `who`'s read quota asks before `records` records of `bytes` go out; false
    /// if the server shuts down meanwhile.
    pub async fn wait_for_read_quota(&self, who: &Principal, records: usize, bytes: usize) -> bool {
        let wait = self.quotas.read(who, records, bytes);
        if wait.is_zero() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = self.shutdown.cancelled() => false,
        }
    }
}

/// The principal the authentication layer attached to the request. A request without one
/// never passed that layer: refuse it rather than guess.
pub(crate) fn principal_of<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the request was not authenticated"))
}

/// The EventGateway service.
#[derive(Clone)]
pub struct Gateway {
    state: Arc<State>,
}

impl Gateway {
    /// Creates the service over shared state.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl EventGateway for Gateway {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let principal = principal_of(&request)?;
        let (deadline, _) = deadline::of(request.metadata(), self.state.request_timeout);
        let record = publish::OutgoingRecord::from_request(
            request.into_inner(),
            &self.state.limits,
            streamgate::time::now_millis(),
        )?;
        self.state
            .access
            .publish(&principal, "Publish", record.topic())?;
        let record = record.typed(&self.state.schemas.current(), &self.state.limits)?;
        self.state
            .quotas
            .publish(&principal, record.size())
            .map_err(GatewayError::from)?;
        record.check_topic(&self.state, deadline).await?;
        Ok(Response::new(record.send(&self.state, deadline).await?))
    }

    type PublishStreamStream = Expiring<PublishResultStream>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let principal = principal_of(&request)?;
        // Each record's topic is checked as it comes; a caller that may publish nowhere
        // is refused before it takes a slot.
        self.state.access.publish_anywhere(&principal)?;
        let permit = self
            .state
            .admission
            .admit(Slot::PublishStream, &principal)
            .map_err(GatewayError::from)?;
        let results = publish_stream::spawn_stream(
            self.state.clone(),
            request.into_inner(),
            permit,
            principal.clone(),
        );
        Ok(Response::new(Expiring::new(results, &principal)))
    }

    type SubscribeStream = Expiring<SubscribeStream>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let principal = principal_of(&request)?;
        let (deadline, _) = deadline::of(request.metadata(), self.state.request_timeout);
        let records = subscribe::open(
            self.state.clone(),
            request.into_inner(),
            deadline,
            &principal,
        )
        .await?;
        Ok(Response::new(Expiring::new(records, &principal)))
    }

    type ConsumeStream = Expiring<ConsumeStream>;

    async fn consume(
        &self,
        request: Request<Streaming<ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        let principal = principal_of(&request)?;
        let (deadline, _) = deadline::of(request.metadata(), self.state.request_timeout);
        let stream = consume::open(
            self.state.clone(),
            request.into_inner(),
            deadline,
            &principal,
        )
        .await?;
        Ok(Response::new(Expiring::new(stream, &principal)))
    }

    async fn control_supplier(
        &self,
        request: Request<ControlSupplierRequest>,
    ) -> Result<Response<SupplierStatus>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        let new_topic = request.settings.as_ref().and_then(|s| s.topic.as_deref());
        self.state.access.supplier(&principal, new_topic)?;
        let action = SupplierAction::try_from(request.action).map_err(|_| {
            Status::invalid_argument(format!(
                "unknown action {}: use SUPPLIER_ACTION_START, SUPPLIER_ACTION_STOP, or none to only change settings",
                request.action
            ))
        })?;
        match self.state.supplier.control(action, request.settings).await {
            Ok(status) => Ok(Response::new(status)),
            Err(ControlError::Invalid(e)) => Err(Status::invalid_argument(format!(
                "{e}; the supplier's settings are unchanged"
            ))),
            Err(ControlError::Stopped) if self.state.shutdown.is_cancelled() => {
                Err(GatewayError::ShuttingDown.into())
            }
            // The supplier's task panicked with this command; its supervisor restarts it.
            Err(ControlError::Stopped) => Err(Status::unavailable(
                "the supplier is restarting after a failure (the server's log says why); retry",
            )),
        }
    }

    type WatchPageStatsStream = Expiring<stats::PageStatsStream>;

    async fn watch_page_stats(
        &self,
        request: Request<WatchPageStatsRequest>,
    ) -> Result<Response<Self::WatchPageStatsStream>, Status> {
        let principal = principal_of(&request)?;
        self.state.access.stats(&principal)?;
        let permit = self
            .state
            .admission
            .admit(Slot::Watcher, &principal)
            .map_err(GatewayError::from)?;
        let stats = stats::watch(
            &self.state.hub,
            request.into_inner(),
            permit,
            self.state.shutdown.clone(),
            &self.state.tasks,
        )?;
        Ok(Response::new(Expiring::new(stats, &principal)))
    }

    async fn open_event_session(
        &self,
        request: Request<OpenEventSessionRequest>,
    ) -> Result<Response<OpenEventSessionResponse>, Status> {
        let principal = principal_of(&request)?;
        event_session::open(&self.state.sessions, &principal, request.get_ref())
    }

    async fn list_topics(
        &self,
        request: Request<ListTopicsRequest>,
    ) -> Result<Response<ListTopicsResponse>, Status> {
        let principal = principal_of(&request)?;
        let include_internal = request.get_ref().include_internal;
        self.state.access.topics(&principal, include_internal)?;
        let (_, budget) = deadline::of(request.metadata(), self.state.request_timeout);
        let topics = self
            .state
            .admin
            .list(include_internal, budget)
            .await
            .map_err(GatewayError::from)?;
        let topics = topics
            .into_iter()
            .map(|t| TopicInfo {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition,
                        leader: p.leader,
                        low_watermark: p.low,
                        high_watermark: p.high,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(ListTopicsResponse { topics }))
    }
}
