//! The client's side of a Consume stream after `start`: acks and nacks, applied to the
//! ledger, with the partitions' commit points stored as they move.

use streamgate::proto::{ConsumeRequest, consume_request};
use tokio::time::Instant;
use tonic::Status;

use super::Session;
use crate::gateway::consume::ack_id::AckId;
use crate::gateway::consume::ledger::Outcome;
use crate::gateway::consume::options;
use crate::gateway::error::GatewayError;

impl Session {
    /// Applies one ack or nack request.
    pub(super) fn handle(&mut self, request: ConsumeRequest) -> Result<(), Status> {
        match request.request {
            Some(consume_request::Request::Ack(ack)) => {
                self.check_id_count(ack.ack_ids.len())?;
                for id in &ack.ack_ids {
                    let id = AckId::parse(id)?;
                    match self.ledger.ack(&id) {
                        Outcome::Applied(Some((key, offset))) => self.store(&key, offset),
                        Outcome::Applied(None) | Outcome::Unknown => {}
                        Outcome::Stale => self.stale += 1,
                    }
                }
            }
            Some(consume_request::Request::Nack(nack)) => {
                self.check_id_count(nack.ack_ids.len())?;
                let at = Instant::now() + options::nack_delay(nack.delay.as_ref())?;
                for id in &nack.ack_ids {
                    if self.ledger.nack(&AckId::parse(id)?, at) == Outcome::Stale {
                        self.stale += 1;
                    }
                }
            }
            Some(consume_request::Request::Start(_)) => {
                return Err(Status::invalid_argument(
                    "start is only valid as the first request of a Consume stream",
                ));
            }
            None => {
                return Err(Status::invalid_argument(
                    "a ConsumeRequest must hold start, ack or nack",
                ));
            }
        }
        self.update_pause();
        Ok(())
    }

    /// No request may name more ids than the stream can have outstanding: more are
    /// repeats or strangers, and each costs a parse.
    fn check_id_count(&self, count: usize) -> Result<(), Status> {
        let limit = self.pacing.max_outstanding;
        if count > limit {
            return Err(GatewayError::OverLimit {
                what: "ack ids in one ack or nack",
                count,
                limit,
                flag: "the stream's max_outstanding_records",
            }
            .into());
        }
        Ok(())
    }
}
