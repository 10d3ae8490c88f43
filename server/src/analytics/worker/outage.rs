//! Telling a broker outage from everything else: a transaction that failed because the
//! cluster (or its transaction coordinator) could not be reached is written again with the
//! same records and offsets once the abort went through, instead of ending the run; any
//! other failure ends it, and the run restarts from the last commit.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// How long a commit keeps writing its transaction again through an outage before the run
/// gives up (and restarts from the last commit). Well under the consumer's
/// `max.poll.interval.ms` (5 minutes), which the worker does not poll meanwhile.
pub(super) const RIDE_OUT: Duration = Duration::from_secs(60);
/// Pause between two attempts.
pub(super) const PAUSE: Duration = Duration::from_millis(500);
/// How long the abort of a failed transaction may keep failing before the producer is
/// replaced: the transaction timeout the worker sets, after which a broker has aborted the
/// transaction itself.
pub(super) const ABORT_PATIENCE: Duration = Duration::from_secs(10);

/// Whether `error` is what an unreachable broker makes a transactional call or a delivery
/// fail with: timeouts, lost connections, a coordinator not (yet) known.
pub(super) fn is_outage(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            OperationTimedOut
                | MessageTimedOut
                | RequestTimedOut
                | BrokerTransportFailure
                | AllBrokersDown
                | BrokerNotAvailable
                | CoordinatorNotAvailable
                | NotCoordinator
                | NetworkException
        )
    )
}

/// Whether librdkafka says the transactional call may simply be made again (an abort
/// that timed out resumes where it was).
pub(super) fn is_retriable(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if e.is_retriable())
}

/// Whether an abort failed only because there was nothing left to abort: the abort inside
/// the failed transaction went through (the producer is ready for the next one).
pub(super) fn nothing_to_abort(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e)
        if e.code() == RDKafkaErrorCode::State && !e.is_fatal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_lost_brokers_are_outages_and_bad_records_are_not() {
        let flush = KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut);
        assert!(is_outage(&flush));
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown);
        assert!(is_outage(&down));
        let too_big = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(!is_outage(&too_big));
        assert!(!is_outage(&KafkaError::Canceled), "the test hook's abandon");
        let fenced = KafkaError::MessageProduction(RDKafkaErrorCode::InvalidProducerEpoch);
        assert!(!is_outage(&fenced));
    }
}
