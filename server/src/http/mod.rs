//! Everything at the HTTP level in front of the gRPC services: the guard (which hosts,
//! origins and content types are served at all), the dashboard's files, CORS for browsers
//! on other origins, the Connect protocol and Server-Sent Events (both rewritten into gRPC
//! calls), and the mapping of tonic's decode and length errors to the
//! statuses that name them as the client's. `server::serve` stacks them in the order they must run.

mod connect;
mod cors;
mod dashboard;
mod decode_errors;
mod get_route;
mod guard;
mod open_streams;
mod protocol;
mod sse;
mod watch_cap;

pub use connect::{ConnectLayer, Methods as ConnectMethods};
pub use cors::cors;
pub use dashboard::DashboardLayer;
pub use decode_errors::{DECODE_ERROR, LENGTH_ERROR, as_client_errors};
pub use get_route::{GetRoute, GetRouteLayer};
pub use guard::{GuardLayer, GuardRules};
pub use open_streams::OpenStreamsLayer;
pub use protocol::{Protocol, is_event_stream};
pub use sse::SseLayer;
pub use watch_cap::{WatchCapLayer, WatchCaps};
