//! The read mask of a Subscribe stream: which fields of `Record` it sends. A field left out
//! is sent unset, and the two that cost the server work per record — `headers` (librdkafka
//! parses them on request, allocating even for a record that has none) and `page_event`
//! (parsed from the value) — are then not computed at all.

use prost_types::FieldMask;

use crate::gateway::error::GatewayError;

/// Longest path quoted back in an error: the request's bytes are the client's.
const MAX_QUOTED_PATH: usize = 64;

/// Which fields of `Record` a stream sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMask {
    pub topic: bool,
    pub partition: bool,
    pub offset: bool,
    pub timestamp: bool,
    pub timestamp_type: bool,
    pub key: bool,
    pub headers: bool,
    pub value: bool,
    pub page_event: bool,
    /// The decoded value (`decoded`, or paths inside it: `decoded.amount`).
    pub decoded: bool,
    /// Why a value did not decode.
    pub decode_error: bool,
}

impl RecordMask {
    /// Every field: what a stream without a read mask sends.
    pub const ALL: Self = Self {
        topic: true,
        partition: true,
        offset: true,
        timestamp: true,
        timestamp_type: true,
        key: true,
        headers: true,
        value: true,
        page_event: true,
        decoded: true,
        decode_error: true,
    };

    const NONE: Self = Self {
        topic: false,
        partition: false,
        offset: false,
        timestamp: false,
        timestamp_type: false,
        key: false,
        headers: false,
        value: false,
        page_event: false,
        decoded: false,
        decode_error: false,
    };

    /// The mask a request's `read_mask` names: absent or empty means every field.
    pub fn from_request(read_mask: Option<FieldMask>) -> Result<Self, GatewayError> {
        let paths = read_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Self::ALL);
        }
        let mut mask = Self::NONE;
        for path in &paths {
            let field = match path.split_once('.') {
                // Paths inside the decoded value: see `decoded_paths`.
                Some(("decoded", _)) => "decoded",
                _ => path,
            };
            *mask.field(field).ok_or_else(|| unknown(path))? = true;
        }
        Ok(mask)
    }

    /// The paths a read mask names inside the decoded value, without `decoded.`.
    pub fn decoded_paths(read_mask: Option<&FieldMask>) -> Vec<&str> {
        read_mask
            .map(|m| {
                m.paths
                    .iter()
                    .filter_map(|p| p.strip_prefix("decoded."))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn field(&mut self, path: &str) -> Option<&mut bool> {
        Some(match path {
            "topic" => &mut self.topic,
            "partition" => &mut self.partition,
            "offset" => &mut self.offset,
            "timestamp" => &mut self.timestamp,
            "timestamp_type" => &mut self.timestamp_type,
            "key" => &mut self.key,
            "headers" => &mut self.headers,
            "value" => &mut self.value,
            "page_event" => &mut self.page_event,
            "decoded" => &mut self.decoded,
            "decode_error" => &mut self.decode_error,
            _ => return None,
        })
    }
}

fn unknown(path: &str) -> GatewayError {
    let quoted: String = path.chars().take(MAX_QUOTED_PATH).collect();
    let cut = if quoted.len() < path.len() { "…" } else { "" };
    GatewayError::InvalidArgument(format!(
        "read_mask: {quoted:?}{cut} is not a field of Record (topic, partition, offset, \
         timestamp, timestamp_type, key, headers, value, page_event, decoded, decode_error; \
         nested paths only inside decoded, e.g. decoded.amount)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> Result<RecordMask, GatewayError> {
        RecordMask::from_request(Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }))
    }

    #[test]
    fn no_mask_or_an_empty_one_sends_every_field() {
        assert_eq!(
            RecordMask::from_request(None).expect("no mask"),
            RecordMask::ALL
        );
        assert_eq!(mask(&[]).expect("empty mask"), RecordMask::ALL);
    }

    #[test]
    fn a_mask_sends_exactly_its_fields() {
        let m = mask(&["key", "value", "key"]).expect("valid");
        assert_eq!(
            m,
            RecordMask {
                key: true,
                value: true,
                ..RecordMask::NONE
            }
        );
        let every = [
            "topic",
            "partition",
            "offset",
            "timestamp",
            "timestamp_type",
            "key",
            "headers",
            "value",
            "page_event",
            "decoded",
            "decode_error",
        ];
        assert_eq!(mask(&every).expect("every field"), RecordMask::ALL);
    }

    #[test]
    fn unknown_nested_and_json_style_paths_are_refused_naming_the_field() {
        for path in [
            "nope",
            "page_event.name",
            "pageEvent",
            "",
            "*",
            "Topic",
            "value.x",
        ] {
            let Err(GatewayError::InvalidArgument(message)) = mask(&["key", path]) else {
                panic!("{path:?} accepted");
            };
            assert!(message.starts_with("read_mask: "), "{message}");
        }
    }

    #[test]
    fn a_huge_path_is_not_echoed_whole() {
        let path = "x".repeat(100_000);
        let Err(GatewayError::InvalidArgument(message)) = mask(&[&path]) else {
            panic!("accepted");
        };
        assert!(message.len() < 300, "{} bytes", message.len());
    }

    #[test]
    fn paths_inside_decoded_select_decoded() {
        let read_mask = FieldMask {
            paths: vec![
                "key".into(),
                "decoded.amount".into(),
                "decoded.customer.id".into(),
            ],
        };
        let m = RecordMask::from_request(Some(read_mask.clone())).expect("valid");
        assert!(m.decoded && m.key && !m.value && !m.decode_error);
        assert_eq!(
            RecordMask::decoded_paths(Some(&read_mask)),
            vec!["amount", "customer.id"]
        );
    }
}
