//! The `streamgate.v1.AdminService` service: topics and consumer groups, checked against
//! the caller's permissions (`topics`, `topics:manage:<glob>`, `group:<glob>`,
//! `groups:manage:<glob>`), each call within its deadline. The Kafka side is
//! [`crate::kafka::manage`]; this module validates requests, applies the permissions and
//! maps to and from the protobuf messages.

mod groups;
mod topics;

use std::sync::Arc;

use streamgate::proto::admin_service_server::AdminService;
use streamgate::proto::{
    AlterTopicConfigsRequest, AlterTopicConfigsResponse, CreateTopicRequest, CreateTopicResponse,
    DeleteGroupRequest, DeleteGroupResponse, DeleteTopicRequest, DeleteTopicResponse,
    DescribeGroupRequest, DescribeGroupResponse, DescribeTopicRequest, DescribeTopicResponse,
    ListGroupsRequest, ListGroupsResponse, ResetGroupOffsetsRequest, ResetGroupOffsetsResponse,
};
use tonic::{Request, Response, Status};

use super::State;
use crate::kafka::manage::AdminError;

/// The AdminService service.
#[derive(Clone)]
pub struct AdminApi {
    state: Arc<State>,
}

impl AdminApi {
    /// The service over the gateway's state.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

/// A Kafka-side failure as the status that says what to do.
fn status(error: AdminError) -> Status {
    let message = error.to_string();
    match error {
        AdminError::NotFound(_) => Status::not_found(message),
        AdminError::AlreadyExists(_) => Status::already_exists(message),
        AdminError::Invalid(_) => Status::invalid_argument(message),
        AdminError::Unimplemented(_) => Status::unimplemented(message),
        AdminError::FailedPrecondition(_) => Status::failed_precondition(message),
        AdminError::Kafka(e) => super::error::GatewayError::from(e).into(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_topic(
        &self,
        request: Request<CreateTopicRequest>,
    ) -> Result<Response<CreateTopicResponse>, Status> {
        topics::create(&self.state, request)
            .await
            .map(Response::new)
    }

    async fn delete_topic(
        &self,
        request: Request<DeleteTopicRequest>,
    ) -> Result<Response<DeleteTopicResponse>, Status> {
        topics::delete(&self.state, request)
            .await
            .map(Response::new)
    }

    async fn describe_topic(
        &self,
        request: Request<DescribeTopicRequest>,
    ) -> Result<Response<DescribeTopicResponse>, Status> {
        topics::describe(&self.state, request)
            .await
            .map(Response::new)
    }

    async fn alter_topic_configs(
        &self,
        request: Request<AlterTopicConfigsRequest>,
    ) -> Result<Response<AlterTopicConfigsResponse>, Status> {
        topics::alter_configs(&self.state, request)
            .await
            .map(Response::new)
    }

    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        groups::list(&self.state, request).await.map(Response::new)
    }

    async fn describe_group(
        &self,
        request: Request<DescribeGroupRequest>,
    ) -> Result<Response<DescribeGroupResponse>, Status> {
        groups::describe(&self.state, request)
            .await
            .map(Response::new)
    }

    async fn reset_group_offsets(
        &self,
        request: Request<ResetGroupOffsetsRequest>,
    ) -> Result<Response<ResetGroupOffsetsResponse>, Status> {
        groups::reset(&self.state, request).await.map(Response::new)
    }

    async fn delete_group(
        &self,
        request: Request<DeleteGroupRequest>,
    ) -> Result<Response<DeleteGroupResponse>, Status> {
        groups::delete(&self.state, request)
            .await
            .map(Response::new)
    }
}
