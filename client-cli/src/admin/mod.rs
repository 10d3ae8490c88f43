//! `streamgate topics create|delete|describe|alter-config` and `streamgate groups`: the
//! AdminService calls, answered as the Kafka tools print them (kafka-topics, kafka-configs,
//! kafka-consumer-groups), or with `--json` as the server's answer in canonical proto3 JSON
//! ([`proto_json`](crate::proto_json)). A refusal is the server's status and message, with
//! the exit codes of [`Exit`](crate::Exit).

pub mod args;
pub mod groups;
pub mod topics;

use streamgate::auth::BearerToken;
use streamgate::proto::admin_service_client::AdminServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The AdminService client: sends the `--token`, if any, on each call.
pub type Admin = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

/// The AdminService client over `channel`, sending `token`.
pub fn client(channel: Channel, token: BearerToken) -> Admin {
    AdminServiceClient::with_interceptor(channel, token)
}
