//! Connect's two message codecs, `proto` (the gRPC bytes as they are) and `json` (the
//! canonical proto3 JSON mapping: lowerCamelCase names out, either name in, bytes as
//! base64, 64-bit integers as strings, enum names, well-known types as their JSON forms),
//! generated from the descriptors the build already compiles — no message is mapped by
//! hand.

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{
    DescriptorError, DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor,
    MethodDescriptor, SerializeOptions,
};
use tonic::Code;

use super::error::ConnectError;

/// The service Connect serves.
/// The package whose services Connect serves (EventGateway, AdminService).
const PACKAGE: &str = "streamgate.v1.";

/// How messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

impl Codec {
    /// The codec a content-type suffix or `encoding` parameter names.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "proto" => Some(Self::Proto),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The gateway's methods, from the build's descriptor set.
#[derive(Debug, Clone)]
pub struct Methods {
    pool: DescriptorPool,
}

impl Methods {
    pub fn load() -> Result<Self, DescriptorError> {
        Ok(Self {
            pool: DescriptorPool::decode(streamgate::proto::FILE_DESCRIPTOR_SET)?,
        })
    }

    /// The method at `path` (`/streamgate.v1.EventGateway/Publish`), if a streamgate service
    /// has it.
    pub fn at(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if !service.starts_with(PACKAGE) {
            return None;
        }
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
    }
}

/// Whether a method is marked `idempotency_level = NO_SIDE_EFFECTS`: only those may be
/// called with GET.
pub fn has_no_side_effects(method: &MethodDescriptor) -> bool {
    const NO_SIDE_EFFECTS: i32 = 1;
    method
        .method_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.idempotency_level)
        == Some(NO_SIDE_EFFECTS)
}

/// `message` (in `codec`) as the protobuf bytes of `descriptor`, for the gRPC side.
pub fn to_proto(
    codec: Codec,
    descriptor: &MessageDescriptor,
    message: Bytes,
) -> Result<Bytes, ConnectError> {
    match codec {
        Codec::Proto => Ok(message),
        Codec::Json => {
            let mut reader = serde_json::Deserializer::from_slice(&message);
            let parsed = DynamicMessage::deserialize_with_options(
                descriptor.clone(),
                &mut reader,
                &DeserializeOptions::new(),
            )
            .and_then(|m| reader.end().map(|()| m))
            .map_err(|e| {
                ConnectError::new(
                    Code::InvalidArgument,
                    format!("the JSON is not a {}: {e}", descriptor.full_name()),
                )
            })?;
            Ok(parsed.encode_to_vec().into())
        }
    }
}

/// The protobuf bytes of `descriptor` from the gRPC side, in `codec`.
pub fn from_proto(
    codec: Codec,
    descriptor: &MessageDescriptor,
    message: Bytes,
) -> Result<Bytes, ConnectError> {
    match codec {
        Codec::Proto => Ok(message),
        Codec::Json => {
            let internal = |e: &dyn std::fmt::Display| {
                ConnectError::new(
                    Code::Internal,
                    format!(
                        "a {} could not be written as JSON: {e}",
                        descriptor.full_name()
                    ),
                )
            };
            let decoded =
                DynamicMessage::decode(descriptor.clone(), message).map_err(|e| internal(&e))?;
            let mut out = Vec::new();
            let mut writer = serde_json::Serializer::new(&mut out);
            decoded
                .serialize_with_options(
                    &mut writer,
                    &SerializeOptions::new().skip_default_fields(false),
                )
                .map_err(|e| internal(&e))?;
            Ok(out.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use streamgate::proto;

    use super::*;

    fn publish() -> MethodDescriptor {
        Methods::load()
            .expect("the build's descriptors")
            .at("/streamgate.v1.EventGateway/Publish")
            .expect("Publish")
    }

    #[test]
    fn finds_the_gateway_s_methods_only() {
        let methods = Methods::load().expect("descriptors");
        assert!(
            methods
                .at("/streamgate.v1.EventGateway/Subscribe")
                .is_some()
        );
        assert!(methods.at("/streamgate.v1.EventGateway/Nope").is_none());
        let describe = methods
            .at("/streamgate.v1.AdminService/DescribeGroup")
            .expect("the admin service's methods too");
        assert!(has_no_side_effects(&describe));
        assert!(methods.at("/streamgate.v1.Nope/Publish").is_none());
        assert!(methods.at("/grpc.health.v1.Health/Check").is_none());
        assert!(methods.at("streamgate.v1.EventGateway/Publish").is_none());
        let list = methods
            .at("/streamgate.v1.EventGateway/ListTopics")
            .expect("ListTopics");
        assert!(has_no_side_effects(&list));
        assert!(!has_no_side_effects(&publish()));
    }

    #[test]
    fn json_in_either_field_name_and_canonical_json_out() {
        let method = publish();
        let json = br#"{"topic":"R1","page_event":{"name":"P1","duration_ms":"120"}}"#;
        let bytes =
            to_proto(Codec::Json, &method.input(), Bytes::from_static(json)).expect("valid JSON");
        let request = proto::PublishRequest::decode(bytes).expect("protobuf");
        assert_eq!(request.topic, "R1");
        let camel = br#"{"topic":"R1","pageEvent":{"name":"P1"}}"#;
        assert!(to_proto(Codec::Json, &method.input(), Bytes::from_static(camel)).is_ok());

        let response = proto::PublishResponse {
            topic: "R1".into(),
            partition: 2,
            offset: 1 << 40,
            timestamp: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
        };
        let out = from_proto(
            Codec::Json,
            &method.output(),
            response.encode_to_vec().into(),
        )
        .expect("JSON");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "topic": "R1", "partition": 2, "offset": "1099511627776",
                "timestamp": "1970-01-01T00:00:01Z"
            })
        );
    }

    #[test]
    fn bad_json_is_the_client_s_error_and_names_the_message() {
        let input = publish().input();
        for bad in [
            &br#"{"topic":"R1","nope":1}"#[..],
            br#"{"topic":1}"#,
            br#"{"topic":"R1"} trailing"#,
            b"",
            &[b'['; 200],
        ] {
            let e =
                to_proto(Codec::Json, &input, Bytes::copy_from_slice(bad)).expect_err("invalid");
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(
                e.message().contains("streamgate.v1.PublishRequest"),
                "{e:?}"
            );
        }
    }
}
