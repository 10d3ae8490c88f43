//! Server-Sent Events (`text/event-stream`) for what people watch, so a browser's
//! `EventSource` and `curl -N` can follow it without a gRPC stack:
//!
//! - `GET /v1/stats?rolling=10s&final_only=true`: WatchPageStats, each message one event
//!   in canonical JSON;
//! - `GET /analytics`: the same counts in the shape of the application streamgate grew out
//!   of (`data:{"P1":12,"P2":9}`, each page's rolling count), so its page works unchanged;
//! - `GET /v1/topics/{topic}/records?from=earliest&group=g&fields=key,value`: Subscribe, one
//!   event per record, resumable with `Last-Event-ID` (see [`records`]).
//!
//! Each route is a WatchPageStats or Subscribe call made through the same stack as a gRPC call
//! (authentication, admission of the watcher, limits, metrics); the request's headers
//! (`Authorization` from curl, say) go with it. Every event has an `id:` (when the server
//! computed it) and the first one sets `retry:`; an idle stream gets a comment line every
//! 15 s so that proxies keep it open.

mod events;
mod record_json;
mod records;

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message as _;
use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value};
use streamgate::proto;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};

use super::connect::{Codec, ConnectError, Methods, encode, from_proto, grpc_request};
use events::{Event, EventStream, ToEvent};

const WATCH: &str = "/streamgate.v1.EventGateway/WatchPageStats";
const SUBSCRIBE: &str = "/streamgate.v1.EventGateway/Subscribe";

/// The SSE routes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// `/v1/stats`: PageStats in canonical JSON.
    Stats,
    /// `/analytics`: `{"page": rolling count, …}`.
    Analytics,
    /// `/v1/topics/{topic}/records`: the topic's records in canonical JSON.
    Records(String),
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Self> {
        // GET only: a HEAD would open a stream nobody reads.
        if *method != Method::GET {
            return None;
        }
        match path {
            "/v1/stats" => Some(Self::Stats),
            "/analytics" => Some(Self::Analytics),
            _ => records::topic_of(path).map(|t| Self::Records(t.to_owned())),
        }
    }
}

/// Serves the SSE routes through the wrapped gRPC service; passes every other request on.
#[derive(Debug, Clone)]
pub struct SseLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    page_stats: MessageDescriptor,
    message_bytes: usize,
}

impl SseLayer {
    /// `message_bytes` bounds one message of the gRPC stream behind a route.
    pub fn new(methods: &Methods, message_bytes: usize) -> Option<Self> {
        Some(Self {
            shared: Arc::new(Shared {
                page_stats: methods.at(WATCH)?.output(),
                message_bytes,
            }),
        })
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = SseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SseService {
            shared: Arc::clone(&self.shared),
            inner,
        }
    }
}

/// See [`SseLayer`].
#[derive(Debug, Clone)]
pub struct SseService<S> {
    shared: Arc<Shared>,
    inner: S,
}

impl<S> Service<Request<Body>> for SseService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(route) = Route::of(request.method(), request.uri().path()) else {
            return Either::Left(self.inner.call(request));
        };
        let inner = self.inner.clone();
        let shared = Arc::clone(&self.shared);
        Either::Right(Box::pin(serve(inner, request, route, shared)))
    }
}

async fn serve<S>(
    inner: S,
    request: Request<Body>,
    route: Route,
    shared: Arc<Shared>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (mut parts, _) = request.into_parts();
    let query = parts.uri.query().unwrap_or("");
    let mut mask = None;
    let call = match &route {
        Route::Stats | Route::Analytics => watch_request(query).map(|w| (WATCH, w.encode_to_vec())),
        Route::Records(topic) => {
            records::subscribe_request(topic, query, &parts.headers).map(|r| {
                mask = r.read_mask.clone();
                (SUBSCRIBE, r.encode_to_vec())
            })
        }
    };
    let (path, message) = match call {
        Ok(call) => call,
        Err(e) => return Ok(e.into_response()),
    };
    parts.uri = http::Uri::from_static(path);
    parts.extensions.insert(super::Protocol::Sse);
    let body = Body::new(Full::new(encode(0, &message)));
    let response = inner.oneshot(grpc_request(parts, None, body)).await?;
    let (parts, body) = response.into_parts();
    // Refused before the stream began (no token, no permission, no slot): an HTTP error,
    // which a browser's EventSource does not retry.
    if let Some(status) = Status::from_header_map(&parts.headers)
        && status.code() != Code::Ok
    {
        return Ok(ConnectError::from_status(&status).into_response());
    }
    let to_event: ToEvent = match route {
        Route::Analytics => Box::new(seed_shape),
        Route::Stats => {
            let descriptor = shared.page_stats.clone();
            Box::new(move |message| canonical(&descriptor, message))
        }
        Route::Records(_) => {
            let mut records = records::RecordEvents::new(mask.as_ref());
            Box::new(move |message| records.events(message))
        }
    };
    let stream = EventStream::new(body, shared.message_bytes, to_event);
    let mut answer = Response::new(Body::new(stream));
    *answer.status_mut() = StatusCode::OK;
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers responses unless told otherwise; an event must not wait in a proxy.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(answer)
}

/// The WatchPageStats request of a query: `rolling` (a duration: `10s`, `1m`) and
/// `final_only` (`true`/`false`); anything else is refused, so a typo is not ignored.
fn watch_request(query: &str) -> Result<proto::WatchPageStatsRequest, ConnectError> {
    let mut request = proto::WatchPageStatsRequest::default();
    let invalid = |message: String| ConnectError::new(Code::InvalidArgument, message);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "rolling" => {
                let rolling = humantime::parse_duration(&value)
                    .map_err(|e| invalid(format!("rolling={value}: {e} (for example 10s)")))?;
                request.rolling = prost_types::Duration::try_from(rolling).ok();
            }
            "final_only" => {
                request.final_only = value
                    .parse()
                    .map_err(|_| invalid(format!("final_only={value}: true or false")))?;
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?}: the stats stream takes rolling and final_only"
                )));
            }
        }
    }
    Ok(request)
}

/// The id of a PageStats event: when the server computed it, in Unix milliseconds.
fn event_id(stats: &proto::PageStats) -> String {
    stats
        .generated_at
        .as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or_default()
        .to_string()
}

fn canonical(descriptor: &MessageDescriptor, message: Bytes) -> Result<Vec<Event>, Status> {
    let stats = proto::PageStats::decode(message.clone())
        .map_err(|e| Status::internal(format!("a PageStats: {e}")))?;
    let json = from_proto(Codec::Json, descriptor, message)
        .map_err(|e| Status::new(e.code(), e.message()))?;
    Ok(vec![Event {
        id: event_id(&stats),
        data: String::from_utf8_lossy(&json).into_owned(),
    }])
}

/// `{"P1":12,"P2":9}`: every page's rolling count.
fn seed_shape(message: Bytes) -> Result<Vec<Event>, Status> {
    let stats = proto::PageStats::decode(message)
        .map_err(|e| Status::internal(format!("a PageStats: {e}")))?;
    let counts: Map<String, Value> = stats
        .pages
        .iter()
        .map(|p| (p.page.clone(), Value::from(p.rolling_count)))
        .collect();
    Ok(vec![Event {
        id: event_id(&stats),
        data: Value::Object(counts).to_string(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_gets_of_their_paths() {
        assert_eq!(
            Route::of(&Method::GET, "/analytics"),
            Some(Route::Analytics)
        );
        assert_eq!(Route::of(&Method::GET, "/v1/stats"), Some(Route::Stats));
        assert_eq!(Route::of(&Method::POST, "/analytics"), None);
        assert_eq!(Route::of(&Method::HEAD, "/analytics"), None);
        assert_eq!(Route::of(&Method::GET, "/analytics/P1"), None);
    }

    #[test]
    fn the_query_is_the_watch_request_and_typos_are_refused() {
        let watch = watch_request("rolling=10s&final_only=true").expect("valid");
        assert_eq!(watch.rolling.map(|d| d.seconds), Some(10));
        assert!(watch.final_only);
        assert_eq!(watch_request("").expect("valid"), Default::default());
        for bad in ["rolling=ten", "final_only=yes", "rollin=1s"] {
            let e = watch_request(bad).expect_err(bad);
            assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn the_seed_shape_is_each_page_s_rolling_count() {
        let stats = proto::PageStats {
            pages: vec![
                proto::PageCount {
                    page: "P1".into(),
                    count: 3,
                    rolling_count: 12,
                },
                proto::PageCount {
                    page: "P2".into(),
                    count: 0,
                    rolling_count: 9,
                },
            ],
            generated_at: Some(prost_types::Timestamp {
                seconds: 2,
                nanos: 5_000_000,
            }),
            ..Default::default()
        };
        let events = seed_shape(stats.encode_to_vec().into()).expect("decodes");
        let event = &events[0];
        assert_eq!(
            (event.id.as_str(), event.data.as_str()),
            ("2005", r#"{"P1":12,"P2":9}"#)
        );
    }
}
