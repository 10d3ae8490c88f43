//! The Connect protocol on the gRPC port, as plain HTTP clients use it: `curl` for unary
//! JSON, binary and GET calls and a server stream, reqwest for a stream both ways over
//! HTTP/2; the same authentication as gRPC; and the same bad requests answered with the same
//! codes over gRPC, grpc-web and Connect.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use serde_json::{Value, json};
use streamgate::proto;
use streamgate_server::Settings;
use streamgate_testkit::TestServer;
use tonic::Code;

use crate::support::{on_each_broker, on_each_broker_with, publish_values};
use crate::transports::{frame, grpc_web_status};

const GATEWAY: &str = "streamgate.v1.EventGateway";

/// Runs `curl -s` with `args` against the server; returns the HTTP status and the body.
pub(crate) async fn curl(args: &[&str]) -> (u16, Bytes) {
    let output = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl runs (apt-get install curl)");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    let mut body = output.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').expect("status line");
    let status = String::from_utf8_lossy(&body[split + 1..])
        .parse()
        .expect("status");
    body.truncate(split);
    (status, body.into())
}

pub(crate) fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(body)))
}

/// Connect envelopes of JSON messages, as a streaming request body.
fn envelopes(messages: &[Value]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for message in messages {
        let bytes = message.to_string();
        out.put_u8(0);
        out.put_u32(bytes.len() as u32);
        out.put_slice(bytes.as_bytes());
    }
    out.to_vec()
}

/// A Connect streaming response: its messages (JSON) and its end-of-stream message.
fn split_envelopes(mut body: Bytes) -> (Vec<Value>, Value) {
    let (mut messages, mut end) = (Vec::new(), None);
    while body.remaining() >= 5 {
        let flags = body.get_u8();
        let length = body.get_u32() as usize;
        let message = json_of(&body.split_to(length));
        match flags {
            0 => messages.push(message),
            2 => end = Some(message),
            other => panic!("flags {other}"),
        }
    }
    assert!(body.is_empty(), "a partial envelope at the end");
    (messages, end.expect("an end-of-stream message"))
}

pub(crate) fn url(server: &TestServer, method: &str) -> String {
    format!("{}/{GATEWAY}/{method}", server.url())
}

/// Unary JSON, binary and GET calls, and a server stream, all from curl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_publishes_lists_and_subscribes() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let json = ["-H", "content-type: application/json"];
        let publish = url(&server, "Publish");

        let body = json!({"topic": topic, "page_event": {"name": "P1"}}).to_string();
        let (status, answer) = curl(&[&json[..], &["-d", &body, &publish]].concat()).await;
        let ack = json_of(&answer);
        assert_eq!((status, &ack["topic"]), (200, &json!(topic)), "{ack}");
        assert_eq!(
            (&ack["partition"], &ack["offset"]),
            (&json!(0), &json!("0"))
        );

        let bad = json!({"topic": "no such topic!", "value": "eA=="}).to_string();
        let (status, answer) = curl(&[&json[..], &["-d", &bad, &publish]].concat()).await;
        assert_eq!(status, 400);
        assert_eq!(json_of(&answer)["code"], "invalid_argument");

        let binary = proto::PublishRequest {
            topic: topic.clone(),
            payload: Some(proto::publish_request::Payload::Value("raw".into())),
            ..Default::default()
        };
        let file = tempfile_with(&binary.encode_to_vec());
        let data = format!("@{}", file.display());
        let proto_args = [
            "-H",
            "content-type: application/proto",
            "--data-binary",
            &data,
        ];
        let (status, answer) = curl(&[&proto_args[..], &[&publish]].concat()).await;
        assert_eq!(status, 200);
        let ack = proto::PublishResponse::decode(answer).expect("a PublishResponse");
        assert_eq!((ack.topic.as_str(), ack.offset), (topic.as_str(), 1));

        let list = url(&server, "ListTopics");
        let get = format!("{list}?connect=v1&encoding=json&message=%7B%7D");
        let (status, answer) = curl(&[&get]).await;
        assert_eq!(status, 200);
        let topics = json_of(&answer)["topics"].clone();
        let ours = topics
            .as_array()
            .expect("topics")
            .iter()
            .find(|t| t["name"] == json!(topic))
            .unwrap_or_else(|| panic!("{topic} in {topics}"));
        assert_eq!(ours["partitions"].as_array().map(Vec::len), Some(1));
        let (status, _) = curl(&[
            "-X",
            "GET",
            &format!("{publish}?encoding=json&message=%7B%7D"),
        ])
        .await;
        assert_eq!(status, 405, "Publish has side effects");

        let subscribe = json!({
            "topics": [topic], "start": {"earliest": true}, "stop_at_end": true,
        });
        let file = tempfile_with(&envelopes(&[subscribe]));
        let data = format!("@{}", file.display());
        let stream = [
            "-H",
            "content-type: application/connect+json",
            "--data-binary",
            &data,
        ];
        let (status, answer) = curl(&[&stream[..], &[&url(&server, "Subscribe")]].concat()).await;
        assert_eq!(status, 200);
        let (messages, end) = split_envelopes(answer);
        let offsets: Vec<&Value> = messages
            .iter()
            .filter_map(|m| m["records"]["records"].as_array())
            .flatten()
            .map(|r| &r["offset"])
            .collect();
        assert_eq!(offsets, [&json!("0"), &json!("1")], "{messages:?}");
        assert_eq!(end, json!({}), "the stream ended without an error");

        // Counted as gRPC calls, by the protocol they came in by.
        let page = crate::metrics::scrape(&server).await;
        let handled = |method: &str, kind: &str, code: &str| {
            let series = format!(
                "grpc_server_handled_total{{grpc_service=\"{GATEWAY}\",grpc_method=\"{method}\",grpc_type=\"{kind}\",grpc_code=\"{code}\",protocol=\"connect\"}}"
            );
            crate::metrics::value(&page, &series)
        };
        assert_eq!(handled("Publish", "unary", "OK"), 2.0);
        assert_eq!(handled("Publish", "unary", "InvalidArgument"), 1.0);
        assert_eq!(handled("Subscribe", "server_stream", "OK"), 1.0);
        server.stop().await;
    })
    .await;
}

/// A file holding `bytes`, for curl's `--data-binary @file`; removed when dropped.
fn tempfile_with(bytes: &[u8]) -> TempPath {
    let path =
        std::env::temp_dir().join(format!("connect-{}", crate::support::random_name("body")));
    std::fs::write(&path, bytes).expect("temp file");
    TempPath(path)
}

struct TempPath(std::path::PathBuf);

impl TempPath {
    fn display(&self) -> std::path::Display<'_> {
        self.0.display()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn reqwest_client(http2: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    match http2 {
        true => builder.http2_prior_knowledge(),
        false => builder.http1_only(),
    }
    .build()
    .expect("http client")
}

/// PublishStream streams both ways: over Connect on HTTP/2 every record is acknowledged in
/// order and a bad one gets its own error while the stream goes on; over HTTP/1.1 the call
/// is refused with a message that says what to use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_stream_over_connect_needs_http2() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let record = |topic: &str| json!({"topic": topic, "value": "dg=="});
        let body = envelopes(&[record(&topic), record("bad topic!"), record(&topic)]);
        let send = |http2| {
            reqwest_client(http2)
                .post(url(&server, "PublishStream"))
                .header("content-type", "application/connect+json")
                .body(body.clone())
                .send()
        };
        let answer = send(true).await.expect("answered");
        assert_eq!(answer.status(), 200);
        let (results, end) = split_envelopes(answer.bytes().await.expect("body"));
        assert_eq!(end, json!({}));
        let outcomes: Vec<(&Value, bool)> = results
            .iter()
            .map(|r| (&r["sequence"], r.get("ack").is_some()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (&json!("0"), true),
                (&json!("1"), false),
                (&json!("2"), true)
            ],
            "{results:?}"
        );
        assert_eq!(results[2]["ack"]["offset"], "1");

        let refused = send(false).await.expect("answered");
        assert_eq!(refused.status(), 505);
        let error = json_of(&refused.bytes().await.expect("body"));
        assert_eq!(error["code"], "unimplemented");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("HTTP/2")),
            "{error}"
        );
        server.stop().await;
    })
    .await;
}

/// Connect calls go through the same authentication and permissions as gRPC: no token or
/// a wrong one is 401 `unauthenticated`, a missing permission 403 `permission_denied`
/// naming it, and the right token is served — a stream's refusal comes in its
/// end-of-stream message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_calls_need_the_token_and_the_permission() {
    let file = streamgate_testkit::AuthFile::new(&[("web", "web-token", &["topics"])]);
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let client = reqwest_client(false);
        let call = |method: &str, token: Option<&str>, body: Value| {
            let mut request = client
                .post(url(&server, method))
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let cases = [
            ("ListTopics", None, 401, "unauthenticated"),
            ("ListTopics", Some("wrong"), 401, "unauthenticated"),
            ("Publish", Some("web-token"), 403, "permission_denied"),
        ];
        for (method, token, status, code) in cases {
            let body = match method {
                "Publish" => json!({"topic": "R1", "value": "eA=="}),
                _ => json!({}),
            };
            let answer = call(method, token, body).await.expect("answered");
            assert_eq!(answer.status(), status, "{method} {token:?}");
            let error = json_of(&answer.bytes().await.expect("body"));
            assert_eq!(error["code"], code, "{error}");
        }
        let served = call("ListTopics", Some("web-token"), json!({}))
            .await
            .expect("answered");
        assert_eq!(served.status(), 200);
        assert!(json_of(&served.bytes().await.expect("body"))["topics"].is_array());

        let stream = client
            .post(url(&server, "Subscribe"))
            .header("content-type", "application/connect+json")
            .body(envelopes(&[json!({"topics": ["R1"]})]))
            .send()
            .await
            .expect("answered");
        assert_eq!(stream.status(), 200);
        let (messages, end) = split_envelopes(stream.bytes().await.expect("body"));
        assert!(messages.is_empty());
        assert_eq!(end["error"]["code"], "unauthenticated", "{end}");
        server.stop().await;
    })
    .await;
}

/// The same bad requests over gRPC, grpc-web and Connect end with the same codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bad_requests_get_the_same_codes_on_every_protocol() {
    const LIMIT: usize = 2048;
    let limit = |s: &mut Settings| s.limits.max_message_bytes = LIMIT;
    on_each_broker_with(limit, |server| async move {
        let topic = server.topic(1).await;
        let mut grpc = server.client().await;
        publish_values(&mut grpc, &topic, ["x".to_owned()]).await;
        let publish = |topic: &str, value: Option<&str>| proto::PublishRequest {
            topic: topic.to_owned(),
            payload: value.map(|v| proto::publish_request::Payload::Value(v.to_owned().into())),
            ..Default::default()
        };
        let too_big = "v".repeat(LIMIT + 1);
        let cases = [
            (
                "an invalid topic name",
                publish("bad topic!", Some("v")),
                Code::InvalidArgument,
            ),
            (
                "a topic that does not exist",
                publish("t-missing-xyz", Some("v")),
                Code::NotFound,
            ),
            (
                "no value and no event",
                publish(&topic, None),
                Code::InvalidArgument,
            ),
            (
                "a value over the limit",
                publish(&topic, Some(&too_big)),
                Code::ResourceExhausted,
            ),
        ];
        for (what, request, code) in cases {
            let over_grpc = grpc.publish(request.clone()).await.expect_err(what).code();
            let web = reqwest_client(false)
                .post(url(&server, "Publish"))
                .header("content-type", "application/grpc-web+proto")
                .body(frame(&request))
                .send()
                .await
                .expect("answered");
            let over_web = Code::from_i32(grpc_web_status(web).await.parse().expect("a code"));
            let connect = reqwest_client(false)
                .post(url(&server, "Publish"))
                .header("content-type", "application/proto")
                .body(request.encode_to_vec())
                .send()
                .await
                .expect("answered");
            let error = json_of(&connect.bytes().await.expect("body"));
            assert_eq!(
                (over_grpc, over_web, error["code"].as_str()),
                (code, code, Some(connect_name(code))),
                "{what}: {error}"
            );
        }
        // A Connect body is read only up to three times the message limit (room for JSON):
        // a larger one is refused before it is parsed, naming the flag.
        let huge = json!({"topic": topic, "value": "A".repeat(3 * (LIMIT + 64 * 1024))});
        let refused = reqwest_client(false)
            .post(url(&server, "Publish"))
            .header("content-type", "application/json")
            .body(huge.to_string())
            .send()
            .await
            .expect("answered");
        assert_eq!(refused.status(), 429);
        let error = json_of(&refused.bytes().await.expect("body"));
        assert_eq!(error["code"], "resource_exhausted", "{error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("--max-message-bytes"))
        );
        server.stop().await;
    })
    .await;
}

fn connect_name(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => "invalid_argument",
        Code::NotFound => "not_found",
        Code::ResourceExhausted => "resource_exhausted",
        other => panic!("no case uses {other:?}"),
    }
}
