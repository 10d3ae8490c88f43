//! The gRPC server metrics that gRPC dashboards expect, with go-grpc-prometheus's names and
//! labels: `grpc_server_started_total`, `grpc_server_handled_total` (by `grpc_code`),
//! `grpc_server_handling_seconds`, `grpc_server_msg_received_total` and
//! `grpc_server_msg_sent_total`, by `grpc_service`, `grpc_method` and `grpc_type` — and by
//! `protocol` (`grpc`, `grpc_web`, `connect`, `sse`), since every protocol of the port ends
//! in the same gRPC call.
//!
//! A tower layer around the gRPC services measures every call, whatever the service: it
//! counts the messages in the request and response bodies (gRPC frames each with a 5-byte
//! prefix), and records the status when the response ends — from its trailers, from the
//! headers of a trailers-only response, or `Canceled` when the client goes away first. A
//! call lasts until its response has ended, so a stream's handling time is its lifetime.
//!
//! Only the methods of the served services get labels of their own; any other path a client
//! makes up is counted under `unknown`, so no client can add series.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message as _;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::http::Protocol;

/// go-grpc-prometheus's (and Prometheus's) default buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which method a call is, and the protocol it came in by (gRPC, grpc-web, Connect, SSE).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
    grpc_type: &'static str,
    protocol: &'static str,
}

/// Which method, by which protocol, and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
    grpc_type: &'static str,
    grpc_code: &'static str,
    protocol: &'static str,
}

/// The families, and the method of every path the server serves.
#[derive(Debug)]
pub struct GrpcMetrics {
    methods: HashMap<String, Slots>,
    unknown: Slots,
    families: Families,
    handled: Family<HandledLabels, Counter>,
}

/// The per-method families.
#[derive(Debug, Clone)]
struct Families {
    started: Family<MethodLabels, Counter>,
    received: Family<MethodLabels, Counter>,
    sent: Family<MethodLabels, Counter>,
    handling: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl Families {
    fn method(&self, labels: MethodLabels) -> Arc<Method> {
        Arc::new(Method {
            started: self.started.get_or_create_owned(&labels),
            received: self.received.get_or_create_owned(&labels),
            sent: self.sent.get_or_create_owned(&labels),
            handling: self.handling.get_or_create_owned(&labels),
            labels,
        })
    }
}

/// One method's series by protocol, each made on its first call (gRPC's at start).
#[derive(Debug)]
struct Slots {
    labels: MethodLabels,
    by_protocol: [OnceLock<Arc<Method>>; Protocol::ALL.len()],
}

/// One method's series, looked up once at start: a call then touches no label map but the
/// handled one (by status code).
#[derive(Debug)]
struct Method {
    labels: MethodLabels,
    started: Counter,
    received: Counter,
    sent: Counter,
    handling: Histogram,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl GrpcMetrics {
    /// Registers the families in `registry`, for the methods the encoded
    /// `FileDescriptorSet`s declare.
    pub fn register(registry: &mut Registry, descriptor_sets: &[&[u8]]) -> Arc<Self> {
        let families = Families {
            started: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            handling: Family::new_with_constructor(histogram),
        };
        // Every method shows from the first scrape on, at zero, as go-grpc-prometheus's
        // InitializeMetrics does (a rate over a series that appears late misses its start):
        // its gRPC series; the other protocols' appear with their first call.
        let slots = |labels: MethodLabels| {
            let by_protocol: [OnceLock<Arc<Method>>; Protocol::ALL.len()] = Default::default();
            let _ = by_protocol[Protocol::Grpc.index()].set(families.method(labels.clone()));
            Slots {
                labels,
                by_protocol,
            }
        };
        let unknown_name: Arc<str> = Arc::from("unknown");
        let metrics = Self {
            methods: methods(descriptor_sets)
                .into_iter()
                .map(|(path, labels)| (path, slots(labels)))
                .collect(),
            unknown: slots(MethodLabels {
                grpc_service: unknown_name.clone(),
                grpc_method: unknown_name,
                grpc_type: "unknown",
                protocol: Protocol::Grpc.label(),
            }),
            families: families.clone(),
            handled: Family::default(),
        };
        let Families {
            started,
            received,
            sent,
            handling,
        } = families;
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server",
            started,
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure",
            metrics.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server",
            handling,
        );
        registry.register(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server",
            received,
        );
        registry.register(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server",
            sent,
        );
        Arc::new(metrics)
    }

    fn method(&self, path: &str, protocol: Protocol) -> Arc<Method> {
        let slots = self.methods.get(path).unwrap_or(&self.unknown);
        slots.by_protocol[protocol.index()]
            .get_or_init(|| {
                self.families.method(MethodLabels {
                    protocol: protocol.label(),
                    ..slots.labels.clone()
                })
            })
            .clone()
    }
}

/// `/package.Service/Method` → its labels, for every method in the descriptor sets.
fn methods(descriptor_sets: &[&[u8]]) -> HashMap<String, MethodLabels> {
    let mut methods = HashMap::new();
    for set in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
            continue;
        };
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                let full: Arc<str> = match package {
                    "" => Arc::from(service.name()),
                    package => Arc::from(format!("{package}.{}", service.name())),
                };
                for method in &service.method {
                    let grpc_type = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    methods.insert(
                        format!("/{full}/{}", method.name()),
                        MethodLabels {
                            grpc_service: full.clone(),
                            grpc_method: Arc::from(method.name()),
                            grpc_type,
                            protocol: Protocol::Grpc.label(),
                        },
                    );
                }
            }
        }
    }
    methods
}

/// The name go-grpc-prometheus gives a status code (Go's `codes.Code.String()`).
fn code_name(code: &[u8]) -> &'static str {
    match code {
        b"0" => "OK",
        b"1" => "Canceled",
        b"2" => "Unknown",
        b"3" => "InvalidArgument",
        b"4" => "DeadlineExceeded",
        b"5" => "NotFound",
        b"6" => "AlreadyExists",
        b"7" => "PermissionDenied",
        b"8" => "ResourceExhausted",
        b"9" => "FailedPrecondition",
        b"10" => "Aborted",
        b"11" => "OutOfRange",
        b"12" => "Unimplemented",
        b"13" => "Internal",
        b"14" => "Unavailable",
        b"15" => "DataLoss",
        b"16" => "Unauthenticated",
        _ => "Unknown",
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<&'static str> {
    headers
        .get("grpc-status")
        .map(|code| code_name(code.as_bytes()))
}

/// Measures every call of the services it wraps.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(pub(super) Arc<GrpcMetrics>);

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

impl<S> Service<http::Request<Body>> for GrpcMetricsService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = self
            .metrics
            .method(request.uri().path(), Protocol::of(&request));
        method.started.inc();
        let received = method.received.clone();
        let request = request.map(|body| {
            Body::new(Counted {
                inner: body,
                frames: Frames::default(),
                messages: received,
                call: None,
            })
        });
        ResponseFuture {
            inner: self.inner.call(request),
            call: Some(Call {
                metrics: self.metrics.clone(),
                method,
                started: Instant::now(),
            }),
        }
    }
}

/// One call being measured: recorded as handled exactly once.
struct Call {
    metrics: Arc<GrpcMetrics>,
    method: Arc<Method>,
    started: Instant,
}

impl Call {
    fn handled(self, code: &'static str) {
        let MethodLabels {
            grpc_service,
            grpc_method,
            grpc_type,
            protocol,
        } = self.method.labels.clone();
        self.metrics
            .handled
            .get_or_create(&HandledLabels {
                grpc_service,
                grpc_method,
                grpc_type,
                grpc_code: code,
                protocol,
            })
            .inc();
        self.method
            .handling
            .observe(self.started.elapsed().as_secs_f64());
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcMetricsService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(call) = this.call.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                // A trailers-only response carries its status in the headers.
                let call = match status_in(&parts.headers) {
                    Some(code) => {
                        call.handled(code);
                        None
                    }
                    None => Some(call),
                };
                let sent = match &call {
                    Some(call) => call.method.sent.clone(),
                    None => Counter::default(),
                };
                let body = Body::new(Counted {
                    inner: body,
                    frames: Frames::default(),
                    messages: sent,
                    call,
                });
                Ok(http::Response::from_parts(parts, body))
            }
            Err(error) => {
                call.handled("Unknown");
                Err(error)
            }
        })
    }
}

/// Counts the gRPC messages that pass through a body; for a response, records the call as
/// handled when the body ends (or is dropped before).
struct Counted {
    inner: Body,
    frames: Frames,
    messages: Counter,
    call: Option<Call>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let started = self.frames.feed(data);
                    if started > 0 {
                        self.messages.inc_by(started);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = status_in(trailers).unwrap_or("Unknown");
                    self.finish(code);
                }
            }
            Some(Err(_)) => self.finish("Unknown"),
            None => self.finish("Unknown"),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Counted {
    fn finish(&mut self, code: &'static str) {
        if let Some(call) = self.call.take() {
            call.handled(code);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // The transport dropped the response before its end: the client went away.
        self.finish("Canceled");
    }
}

/// Where a body is in its sequence of gRPC frames: 1 byte flag, 4 bytes length, message.
#[derive(Debug, Default)]
struct Frames {
    prefix: [u8; 5],
    prefix_read: usize,
    message_left: usize,
}

impl Frames {
    /// Reads `data`, the next bytes of the body; returns how many messages began in it.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut started = 0;
        while !data.is_empty() {
            if self.message_left > 0 {
                let n = self.message_left.min(data.len());
                self.message_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_read).min(data.len());
            self.prefix[self.prefix_read..self.prefix_read + n].copy_from_slice(&data[..n]);
            self.prefix_read += n;
            data = &data[n..];
            if self.prefix_read == 5 {
                started += 1;
                self.prefix_read = 0;
                let length = [
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ];
                self.message_left = usize::try_from(u32::from_be_bytes(length)).unwrap_or(0);
            }
        }
        started
    }
}

#[cfg(test)]
mod tests;
