//! Everything at the HTTP level in front of the gRPC services: the dashboard's files, CORS
//! for browsers on other origins, and the mapping of tonic's length error to the status the
//! gRPC spec wants. `server::serve` stacks them in the order they must run.

mod cors;
mod dashboard;
mod get_route;
mod length_error;

pub use cors::cors;
pub use dashboard::DashboardLayer;
pub use get_route::{GetRoute, GetRouteLayer};
pub use length_error::as_resource_exhausted;
