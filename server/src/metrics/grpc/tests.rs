//! Unit tests of `grpc`.

use super::*;

fn frame(len: u32) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend(std::iter::repeat_n(7, len as usize));
    out
}

#[test]
fn counts_messages_however_the_body_is_cut() {
    let body: Vec<u8> = [frame(3), frame(0), frame(300), frame(1)].concat();
    for chunk in [1, 2, 4, 5, 6, 7, 64, body.len()] {
        let mut frames = Frames::default();
        let counted: u64 = body.chunks(chunk).map(|c| frames.feed(c)).sum();
        assert_eq!(counted, 4, "chunks of {chunk}");
    }
}

#[test]
fn knows_the_served_methods_and_nothing_else() {
    let methods = methods(&[streamgate::proto::FILE_DESCRIPTOR_SET]);
    let subscribe = &methods["/streamgate.v1.EventGateway/Subscribe"];
    assert_eq!(subscribe.grpc_type, "server_stream");
    assert_eq!(
        methods["/streamgate.v1.EventGateway/Consume"].grpc_type,
        "bidi_stream"
    );
    assert_eq!(
        methods["/streamgate.v1.EventGateway/Publish"].grpc_type,
        "unary"
    );
    assert!(!methods.contains_key("/streamgate.v1.EventGateway/Nope"));
}
