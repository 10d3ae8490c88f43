//! What the one port serves, layer by layer: gRPC (gateway, health, reflection v1 and
//! v1alpha) behind grpc-web, the dashboard, `/metrics` and CORS, with HTTP/2 limits; and the
//! `--metrics-listen` port.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use streamgate::proto::admin_service_server::AdminServiceServer;
use streamgate::proto::event_gateway_server::EventGatewayServer;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;

use super::ServeError;
use super::listen::Connections;
use crate::auth::AuthLayer;
use crate::gateway::{AdminApi, Gateway, State};
use crate::http;
use crate::metrics::{GrpcMetricsLayer, MetricsEndpointLayer};
use crate::settings::Settings;
use crate::tls;

/// Extra room above the record limit for the rest of a request (topic, headers, framing).
const REQUEST_OVERHEAD: usize = 64 * 1024;

/// The largest WatchPageStats message an SSE route reads (the hub keeps them under about
/// 3.5 MiB).
const STATS_MESSAGE_BYTES: usize = 8 << 20;

/// HTTP/2 receive windows. A PublishStream whose records wait (a long linger, a slow
/// broker) stops reading; its client is then held back by the stream's window. h2 also
/// counts the frames waiting in its buffers and closes the connection (ENHANCE_YOUR_CALM)
/// when small ones cost more than half the connection window: with hyper's 1 MiB for both,
/// a client sending each small record in a frame of its own was cut off after ~1,000
/// records. A stream window of a quarter MiB under an 8 MiB connection window holds such a
/// client back well inside that budget (a window of 30-byte frames costs ~2 MiB of the
/// 4 MiB), and still lets 5 MB/s through a stream at 50 ms of round trip.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// The services and the layers that measure and answer beside them.
pub(super) struct Routes {
    /// The gateway's shared state.
    pub state: Arc<State>,
    /// `grpc.health.v1`.
    pub health: HealthServer<HealthService>,
    /// Measures every gRPC call.
    pub calls: GrpcMetricsLayer,
    /// Answers `GET /metrics`.
    pub scrapes: MetricsEndpointLayer,
}

/// The one port; ends when `shutdown` is cancelled.
pub(super) fn serve(
    incoming: Connections,
    settings: &Settings,
    routes: Routes,
    shutdown: &CancellationToken,
) -> Result<impl Future<Output = Result<(), tonic::transport::Error>> + use<>, ServeError> {
    let refusals = routes.state.access.refusals();
    let sessions = routes.state.sessions.clone();
    let admin = AdminServiceServer::new(AdminApi::new(routes.state.clone()));
    let gateway = EventGatewayServer::new(Gateway::new(routes.state))
        .max_decoding_message_size(settings.limits.max_message_bytes + REQUEST_OVERHEAD);
    let http_settings = &settings.http;
    let methods = http::ConnectMethods::load()?;
    let message_bytes = settings.limits.max_message_bytes + REQUEST_OVERHEAD;
    let sse = http::SseLayer::new(&methods, STATS_MESSAGE_BYTES)
        .ok_or(ServeError::MissingMethod("WatchPageStats"))?;
    let router = Server::builder()
        .accept_http1(true)
        .max_concurrent_streams(http_settings.max_concurrent_streams)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keepalive_interval(Some(http_settings.keepalive))
        .http2_keepalive_timeout(Some(http_settings.keepalive_timeout))
        // Every request counts as an open stream of its connection (idle connections close).
        .layer(http::OpenStreamsLayer)
        // Before anything answers: which hosts, origins and content types are served.
        .layer(guard(settings))
        .layer(http::cors(&http_settings.cors_origins))
        // The dashboard's files and /metrics, before grpc-web refuses plain HTTP/1.1 requests.
        .layer(http::DashboardLayer::default())
        .layer(routes.scrapes)
        // SSE streams and Connect's JSON and binary calls become gRPC calls of the same stack.
        .layer(sse)
        .layer(http::ConnectLayer::new(methods, message_bytes))
        .layer(tonic_web::GrpcWebLayer::new())
        // Every gRPC call, browsers' included, with the status it finally ends with.
        .layer(routes.calls)
        .layer(http::WatchCapLayer::new(
            http_settings.health_watches,
            shutdown.clone(),
        ))
        .layer(tower::util::MapResponseLayer::new(
            http::as_client_errors::<tonic::body::Body>,
        ))
        // Below grpc-web: browser calls are authenticated exactly like native gRPC ones.
        .layer(
            AuthLayer::new(
                settings.authenticator.clone(),
                refusals,
                tls::client_subject,
            )
            .with_sessions(sessions, http::is_event_stream),
        )
        .add_service(gateway)
        .add_service(admin)
        .add_service(routes.health)
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

/// The request guard of a port served with `settings`: the host check only on plaintext
/// (a TLS port's certificate already binds the name the browser used).
pub(super) fn guard(settings: &Settings) -> http::GuardLayer {
    let allowed_hosts = match settings.tls {
        Some(_) => None,
        None => settings.http.allowed_hosts.clone(),
    };
    http::GuardLayer::new(http::GuardRules {
        allowed_hosts,
        cors_origins: settings.http.cors_origins.clone(),
    })
}

/// The `--metrics-listen` port: /metrics (behind the same TLS and authentication as the main
/// port); every other request is a gRPC UNIMPLEMENTED.
pub(super) async fn serve_metrics(
    incoming: Connections,
    guard: http::GuardLayer,
    scrapes: MetricsEndpointLayer,
    shutdown: CancellationToken,
) {
    let router = Server::builder()
        .accept_http1(true)
        .layer(http::OpenStreamsLayer)
        .layer(guard)
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
