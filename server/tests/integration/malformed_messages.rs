//! Messages no honest client sends: invalid UTF-8 in a string field, unknown groups nested
//! past the decoder's recursion limit, a stream message over the size limit, a start before
//! 1970. Each is the client's fault and answered as such, at once — never INTERNAL (which
//! an error-rate alert counts as the server's) and never a long wait.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures::StreamExt;
use streamgate::proto::start_position;
use streamgate_server::Settings;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::support::{on_each_broker, on_each_broker_with, subscribe_request, within};

/// Sends bytes as they are and reads answers as bytes: the test writes the wire format.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

const PUBLISH: &str = "/streamgate.v1.EventGateway/Publish";
const PUBLISH_STREAM: &str = "/streamgate.v1.EventGateway/PublishStream";

/// A PublishRequest whose `topic` (field 1) is `topic`'s bytes, UTF-8 or not.
fn publish_with_topic(topic: &[u8]) -> Bytes {
    let mut message = vec![0x0a, u8::try_from(topic.len()).expect("a short topic")];
    message.extend_from_slice(topic);
    // value (field 5) = "v"
    message.extend_from_slice(&[0x2a, 0x01, b'v']);
    Bytes::from(message)
}

/// Unknown field 99 as groups nested `depth` deep (start-group tags, then end-group tags).
fn nested_groups(depth: usize) -> Bytes {
    let (start, end) = ([0x9b, 0x06], [0x9c, 0x06]);
    let mut message = Vec::with_capacity(depth * 4);
    for _ in 0..depth {
        message.extend_from_slice(&start);
    }
    for _ in 0..depth {
        message.extend_from_slice(&end);
    }
    Bytes::from(message)
}

async fn unary(channel: Channel, message: Bytes) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(message),
        PUBLISH.parse().expect("path"),
        RawCodec,
    )
    .await
    .expect_err("refused")
}

/// The status a PublishStream of `messages` ends with (its results are skipped).
async fn stream(channel: Channel, messages: Vec<Bytes>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let opened = grpc
        .streaming(
            tonic::Request::new(futures::stream::iter(messages)),
            PUBLISH_STREAM.parse().expect("path"),
            RawCodec,
        )
        .await;
    let mut results = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    within(Duration::from_secs(30), "the stream's end", async {
        loop {
            match results.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return status,
                None => panic!("the stream ended OK"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_invalid_argument_not_internal() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let status = unary(server.channel().await, publish_with_topic(b"R\xff\xfe")).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let status = unary(server.channel().await, nested_groups(500)).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

        let good = publish_with_topic(topic.as_bytes());
        let status = stream(
            server.channel().await,
            vec![good, publish_with_topic(b"\xc3\x28")],
        )
        .await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    })
    .await;
}

/// An over-size message on a stream is RESOURCE_EXHAUSTED, as on a unary call (tonic said
/// OUT_OF_RANGE there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_size_stream_message_is_resource_exhausted() {
    let small = |s: &mut Settings| s.limits.max_message_bytes = 1024;
    on_each_broker_with(small, |server| async move {
        let topic = server.topic(1).await;
        let mut huge = publish_with_topic(topic.as_bytes()).to_vec();
        // value (field 5) of 256 KiB: over the limit plus the request overhead (64 KiB).
        huge.extend_from_slice(&[0x2a, 0x80, 0x80, 0x10]);
        huge.resize(huge.len() + 256 * 1024, b'x');
        let status = stream(server.channel().await, vec![Bytes::from(huge.clone())]).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let status = unary(server.channel().await, Bytes::from(huge)).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    })
    .await;
}

/// A start timestamp before 1970 is refused at once (it used to be asked of the broker,
/// and answered UNAVAILABLE after the deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_before_1970_is_refused_at_once() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let before = start_position::Position::Timestamp(prost_types::Timestamp {
            seconds: -3600,
            nanos: 0,
        });
        let mut request = tonic::Request::new(subscribe_request(&topic, None, Some(before)));
        request.set_timeout(Duration::from_secs(2));
        let status = client.subscribe(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("1970"), "{status:?}");
    })
    .await;
}
