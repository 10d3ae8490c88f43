//! An answer of the server as canonical proto3 JSON, on one line: lowerCamelCase names,
//! 64-bit integers as strings, enums by name, fields at their default written too (as the
//! server's own Connect JSON writes them), unset optional fields left out. Written from the
//! descriptors the `streamgate` crate compiles, so no message is mapped by hand.

use std::io::Write;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::Failure;

/// Writes `message`, a `streamgate.v1.{name}`, as one line of canonical JSON.
pub fn write(
    out: &mut impl Write,
    message: &impl prost::Message,
    name: &str,
) -> Result<(), Failure> {
    let line = to_string(message, name)
        .map_err(|e| Failure::refused(format!("the answer could not be written as JSON: {e}")))?;
    writeln!(out, "{line}").map_err(Failure::io)
}

fn to_string(message: &impl prost::Message, name: &str) -> Result<String, String> {
    let pool = DescriptorPool::decode(streamgate::proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| e.to_string())?;
    let full_name = format!("streamgate.v1.{name}");
    let descriptor = pool
        .get_message_by_name(&full_name)
        .ok_or_else(|| format!("no message {full_name} in the descriptors"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use streamgate::proto::{GroupPartition, OffsetMove, ResetGroupOffsetsResponse};

    use super::*;

    #[test]
    fn answers_are_canonical_json() {
        let plan = ResetGroupOffsetsResponse {
            moves: vec![OffsetMove {
                topic: "orders".into(),
                partition: 2,
                current_offset: None,
                new_offset: 7,
            }],
            executed: false,
        };
        let text = to_string(&plan, "ResetGroupOffsetsResponse").expect("JSON");
        assert_eq!(
            text,
            r#"{"moves":[{"topic":"orders","partition":2,"newOffset":"7"}],"executed":false}"#
        );
        let lag = GroupPartition {
            committed_offset: Some(0),
            ..Default::default()
        };
        let text = to_string(&lag, "GroupPartition").expect("JSON");
        assert!(text.contains(r#""committedOffset":"0""#), "{text}");
        assert!(to_string(&lag, "NoSuchMessage").is_err());
    }
}
