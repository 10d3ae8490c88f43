//! Ack ids: what a Consume client sends back to acknowledge a record. Opaque to clients,
//! but plain text, so that a log line or a grpcurl session shows what it points at:
//!
//! ```text
//! 3f9a2c1e.2.1.0.1234.orders      stream . epoch . attempt . partition . offset . topic
//! ```
//!
//! The stream tag (random per stream) and the epoch (counting assignments on that stream)
//! make an id from another stream, or from before a rebalance, recognisable as stale. The
//! topic goes last because topic names may contain dots (never anything else outside
//! `[a-zA-Z0-9._-]`, so no id needs escaping).

use std::fmt;

use crate::gateway::error::GatewayError;

/// Longest ack id accepted: five numbers, the dots and a topic name of at most 249 bytes.
pub const MAX_ACK_ID_BYTES: usize = 8 + 20 + 10 + 10 + 20 + 249 + 5;

/// Where one delivery of one record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckId {
    /// The stream's random tag.
    pub stream: u32,
    /// The stream's assignment epoch at delivery.
    pub epoch: u64,
    /// The delivery attempt, from 1.
    pub attempt: u32,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Topic.
    pub topic: String,
}

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:08x}.{}.{}.{}.{}.{}",
            self.stream, self.epoch, self.attempt, self.partition, self.offset, self.topic
        )
    }
}

impl AckId {
    /// Parses an id this server issued; anything else is INVALID_ARGUMENT naming it.
    pub fn parse(text: &str) -> Result<Self, GatewayError> {
        let invalid = || {
            let shown: String = text.chars().take(64).collect();
            GatewayError::InvalidArgument(format!(
                "{shown:?} is not an ack id: send the ack_id of a ConsumedRecord as it came"
            ))
        };
        if text.len() > MAX_ACK_ID_BYTES {
            return Err(invalid());
        }
        let mut parts = text.splitn(6, '.');
        let mut next = || parts.next().ok_or_else(invalid);
        let stream = u32::from_str_radix(next()?, 16).map_err(|_| invalid())?;
        let epoch = next()?.parse().map_err(|_| invalid())?;
        let attempt = next()?.parse().map_err(|_| invalid())?;
        let partition = next()?.parse().map_err(|_| invalid())?;
        let offset = next()?.parse().map_err(|_| invalid())?;
        let topic = next()?;
        if topic.is_empty() || partition < 0 || offset < 0 || attempt == 0 {
            return Err(invalid());
        }
        Ok(Self {
            stream,
            epoch,
            attempt,
            partition,
            offset,
            topic: topic.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trips_and_keeps_dots_in_the_topic() {
        let id = AckId {
            stream: 0x3f9a_2c1e,
            epoch: 2,
            attempt: 1,
            partition: 0,
            offset: 1234,
            topic: "orders.v1".into(),
        };
        assert_eq!(id.to_string(), "3f9a2c1e.2.1.0.1234.orders.v1");
        assert_eq!(AckId::parse(&id.to_string()).expect("parses"), id);
    }

    #[test]
    fn refuses_what_it_did_not_issue() {
        for bad in [
            "",
            "x",
            "3f9a2c1e.2.1.0.1234",
            "3f9a2c1e.2.1.0.1234.",
            "3f9a2c1e.2.0.0.1234.t",
            "3f9a2c1e.2.1.-1.1234.t",
            "3f9a2c1e.2.1.0.-5.t",
            "zz.2.1.0.1.t",
        ] {
            let error = AckId::parse(bad).expect_err(bad);
            assert!(error.to_string().contains("is not an ack id"), "{error}");
        }
        let long = format!("1.1.1.0.1.{}", "t".repeat(MAX_ACK_ID_BYTES));
        assert!(AckId::parse(&long).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,400}") {
            let _ = AckId::parse(&text);
        }

        #[test]
        fn parses_every_id_it_prints(
            stream: u32, epoch: u64, attempt in 1u32.., partition in 0i32.., offset in 0i64..,
            topic in "[a-zA-Z0-9._-]{1,249}",
        ) {
            let id = AckId { stream, epoch, attempt, partition, offset, topic };
            prop_assert_eq!(AckId::parse(&id.to_string()).expect("parses"), id);
        }
    }
}
