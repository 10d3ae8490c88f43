//! Consume: acknowledged consumption over a bidirectional stream. The client opens it with
//! `start` (a group is required), receives batches of records with ack ids, and acks or
//! nacks them in any order; the group's offsets only ever cover acknowledged records.
//!
//! It stands on Subscribe's group machinery (request validation, offset resets, the
//! consumer and its rebalance hook, the assignment announcement) and adds:
//! - [`options`]: the `start` request's pacing (outstanding limit, ack deadline, attempts);
//! - [`ack_id`]: the ids records are acknowledged by;
//! - [`ledger`]: what is outstanding, what may be committed, what is due again (pure);
//! - [`session`]: the task that serves one stream;
//! - [`dead_letters`]: writing records that used up their attempts to their dead-letter topic.

mod ack_id;
mod dead_letters;
mod ledger;
mod options;
mod outbox;
mod session;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use streamgate::proto::{ConsumeRequest, ConsumeResponse, consume_request, consume_response};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::{Status, Streaming};

pub use self::dead_letters::DeadLetterTopics;
use self::outbox::Response;
use self::session::{Opened, Session};
use super::State;
use super::subscribe::plan::Plan;
use crate::admission::Slot;
use crate::auth::Principal;
use crate::gateway::error::{GatewayError, request_error};
use crate::gateway::select::Selector;
use crate::metrics::RecordMetrics;

/// Responses queued between the session and the transport (each at most one batch; what
/// they hold is outstanding, so the ledger bounds them too).
const CHANNEL_CAPACITY: usize = 16;

/// Opens a Consume stream: waits for `start` (within the call's deadline), validates it,
/// checks permissions, joins the group and starts the session. Errors up to here are the
/// call's status.
pub async fn open(
    state: Arc<State>,
    mut requests: Streaming<ConsumeRequest>,
    deadline: Instant,
    principal: &Principal,
) -> Result<ConsumeStream, Status> {
    let first = tokio::time::timeout_at(deadline, requests.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(
                "no start request arrived: a Consume stream begins with start",
            )
        })?
        .map_err(request_error)?;
    let Some(ConsumeRequest {
        request: Some(consume_request::Request::Start(start)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first request of a Consume stream must be start",
        ));
    };
    let (plan, pacing) = options::validate(start, &state.limits)?;
    let group = plan.group.clone().expect("validate requires a group");
    state.access.consume(
        principal,
        plan.topics.iter().map(|t| t.as_str()),
        &group,
        !plan.start.is_edge(),
    )?;
    let permit = state
        .admission
        .admit(Slot::Stream, principal)
        .map_err(GatewayError::from)?;
    if pacing.max_attempts > 0 {
        dead_letters::prepare(&state, principal, &plan.topics, &group, deadline).await?;
    }
    let consumer = join(&state, &plan, &group, deadline).await?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (end_tx, end_rx) = oneshot::channel();
    let selector = Selector::new(
        plan.selection.clone(),
        plan.topics.iter().map(|t| t.as_str()),
        &state.schemas.current(),
        state.value_limits(),
        state.records.clone(),
    );
    let session = Session::new(
        state.clone(),
        Opened {
            selector,
            consumer,
            requests,
            tx,
            end: end_tx,
            group,
            start: plan.start,
            pacing,
            permit,
            principal: principal.clone(),
        },
    );
    // A panic drops the session's end sender, which the stream reports as INTERNAL.
    state.tasks.spawn(async move {
        crate::supervisor::catch("consume session", session.run()).await;
    });
    Ok(ConsumeStream {
        items: rx,
        end: Some(end_rx),
        metrics: state.records.clone(),
    })
}

async fn join(
    state: &State,
    plan: &Plan,
    group: &str,
    deadline: Instant,
) -> Result<Arc<super::subscribe::SubscriptionConsumer>, GatewayError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let partitions = plan.partitions(state, budget).await?;
    super::subscribe::join_group(state, plan, group, &partitions, deadline, false).await
}

/// The response stream of Consume: what the session sends, then its final status.
pub struct ConsumeStream {
    items: mpsc::Receiver<Response>,
    end: Option<oneshot::Receiver<Option<Status>>>,
    metrics: RecordMetrics,
}

impl Stream for ConsumeStream {
    type Item = Result<ConsumeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(item) = std::task::ready!(self.items.poll_recv(cx)) {
            if let Ok(ConsumeResponse {
                message: Some(consume_response::Message::Records(batch)),
            }) = &item
            {
                self.metrics.delivered_each(
                    batch
                        .records
                        .iter()
                        .filter_map(|r| r.record.as_ref())
                        .map(|r| r.topic.as_str()),
                );
            }
            return Poll::Ready(Some(item));
        }
        let Some(end) = self.end.as_mut() else {
            return Poll::Ready(None);
        };
        let status = std::task::ready!(Pin::new(end).poll(cx));
        self.end = None;
        Poll::Ready(match status {
            Ok(None) => None,
            Ok(Some(status)) => Some(Err(status)),
            Err(_) => Some(Err(Status::internal(
                "the Consume stream's task failed; the server's log says why",
            ))),
        })
    }
}
