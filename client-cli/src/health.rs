//! `streamgate health`: one `grpc.health.v1.Health/Check`, for probes (the container image's
//! `HEALTHCHECK`, a Kubernetes exec probe, a script waiting for a server). The answer goes to
//! stdout; the exit code says it: 0 SERVING, 1 anything else (or an unknown service), 3 the
//! server cannot be reached within `--timeout`.

use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::args::HealthArgs;
use crate::{Exit, Failure};
use streamgate::auth::BearerToken;

/// Runs the subcommand.
pub async fn run(
    mut client: HealthClient<InterceptedService<Channel, BearerToken>>,
    args: HealthArgs,
) -> Result<(), Failure> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: args.service.clone(),
    });
    request.set_timeout(args.timeout);
    let checked = tokio::time::timeout(args.timeout, client.check(request))
        .await
        .map_err(|_| Failure::unreachable(format!("no answer within {:?}", args.timeout)))?;
    let status = checked?.into_inner().status();
    println!("{}", status.as_str_name());
    match status {
        ServingStatus::Serving => Ok(()),
        _ => Err(Failure::silent(Exit::Refused)),
    }
}
