//! The other doors on the same port: grpc-web over HTTP/1.1 (what browsers use), CORS,
//! grpcurl through reflection, gRPC health — and a shutdown that ends open streams.

use std::process::Command;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use streamgate::proto::{self, start_position, subscribe_response};
use streamgate_server::Settings;

use crate::support::{
    next_message, on_each_broker, on_each_broker_with, publish_values, subscribe_request, within,
};

/// One grpc-web frame: flag byte, big-endian length, payload.
pub fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.put_slice(&body);
    out.freeze()
}

/// Splits a grpc-web response body into its data messages and its trailer text.
pub fn unframe(mut body: Bytes) -> (Vec<Bytes>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(&payload));
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

/// A grpc-web call from a page on `http://dashboard.example` (which the test's server must
/// allow with --cors-origins).
async fn grpc_web_call(url: &str, method: &str, request: &impl Message) -> reqwest::Response {
    let origin = [("origin", "http://dashboard.example")];
    grpc_web_call_with(url, method, request, &origin).await
}

async fn grpc_web_call_with(
    url: &str,
    method: &str,
    request: &impl Message,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut builder = reqwest::Client::builder()
        .http1_only()
        // The whole call, body included: a hung stream fails the test.
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
        .post(format!("{url}/streamgate.v1.EventGateway/{method}"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(frame(request))
        .send()
        .await
        .expect("grpc-web request")
}

/// grpc-web calls are authenticated exactly like gRPC ones: the same header, the same
/// statuses, where a page can read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_need_the_token_too() {
    let file = streamgate_testkit::AuthFile::new(&[("web", "web-token", &["topics"])]);
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let url = server.url();
        let list = proto::ListTopicsRequest::default();
        let publish = proto::PublishRequest {
            topic: "R1".into(),
            payload: Some(proto::publish_request::Payload::Value("v".into())),
            ..Default::default()
        };
        let token = [("authorization", "Bearer web-token")];
        let cases: [(&[(&str, &str)], &str, _); 4] = [
            (&[], "ListTopics", "16"),
            (&[("authorization", "Bearer wrong")], "ListTopics", "16"),
            (&token, "ListTopics", "0"),
            (&token, "Publish", "7"),
        ];
        for (headers, method, expected) in cases {
            let response = if method == "Publish" {
                grpc_web_call_with(&url, method, &publish, headers).await
            } else {
                grpc_web_call_with(&url, method, &list, headers).await
            };
            let code = grpc_web_status(response).await;
            assert_eq!(code, expected, "{method} with {headers:?}");
        }
        server.stop().await;
    })
    .await;
}

/// The grpc-status of a grpc-web response: in the headers for a trailers-only answer,
/// else in the trailer frame.
pub(crate) async fn grpc_web_status(response: reqwest::Response) -> String {
    if let Some(code) = response.headers().get("grpc-status") {
        return code.to_str().expect("ascii").to_owned();
    }
    let (_, trailers) = unframe(response.bytes().await.expect("body"));
    trailers
        .lines()
        .find_map(|l| l.strip_prefix("grpc-status:"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|| panic!("no grpc-status in {trailers:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_unary_and_server_streaming_over_http1() {
    let origins =
        |s: &mut Settings| s.http.cors_origins = vec!["http://dashboard.example".to_owned()];
    on_each_broker_with(origins, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["a".to_owned(), "b".to_owned()]).await;

        let response = grpc_web_call(
            &server.url(),
            "ListTopics",
            &proto::ListTopicsRequest::default(),
        )
        .await;
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some("http://dashboard.example")
        );
        let exposed = response
            .headers()
            .get("access-control-expose-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            exposed.contains("grpc-status") && exposed.contains("grpc-message"),
            "{exposed}"
        );
        let (messages, trailers) = unframe(response.bytes().await.expect("body"));
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
        let topics = proto::ListTopicsResponse::decode(messages[0].clone()).expect("decodes");
        assert!(topics.topics.iter().any(|t| t.name == topic));

        let mut request =
            subscribe_request(&topic, None, Some(start_position::Position::Earliest(true)));
        request.stop_at_end = true;
        let response = grpc_web_call(&server.url(), "Subscribe", &request).await;
        let (messages, trailers) = unframe(response.bytes().await.expect("body"));
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
        let decoded: Vec<_> = messages
            .into_iter()
            .map(|m| {
                proto::SubscribeResponse::decode(m)
                    .expect("decodes")
                    .message
                    .expect("message")
            })
            .collect();
        assert!(matches!(
            decoded.first(),
            Some(subscribe_response::Message::Assignment(_))
        ));
        let values: Vec<_> = decoded[1..]
            .iter()
            .flat_map(|m| match m {
                subscribe_response::Message::Records(batch) => batch.records.clone(),
                other => panic!("only record batches after the assignment: {other:?}"),
            })
            .map(|r| r.value.unwrap_or_default())
            .collect();
        assert_eq!(
            values,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );

        // An error travels in the trailers, readable by the page thanks to CORS.
        let response = grpc_web_call(
            &server.url(),
            "Publish",
            &proto::PublishRequest {
                topic: "bad topic".into(),
                ..Default::default()
            },
        )
        .await;
        let status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (_, trailers) = unframe(response.bytes().await.expect("body"));
        assert!(
            status.as_deref() == Some("3") || trailers.contains("grpc-status:3"),
            "{status:?} {trailers}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_listed_origins() {
    let origins = |s: &mut Settings| s.http.cors_origins = vec!["http://localhost:5173".to_owned()];
    on_each_broker_with(origins, |server| async move {
        // Another origin gets no CORS grant: the browser keeps the page from calling.
        let refused = preflight(&server.url(), "http://evil.example").await;
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{:?}",
            refused.headers()
        );
        let response = preflight(&server.url(), "http://localhost:5173").await;
        assert!(response.status().is_success(), "{:?}", response.status());
        let allowed = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_lowercase()
        };
        assert_eq!(
            allowed("access-control-allow-origin"),
            "http://localhost:5173"
        );
        assert!(allowed("access-control-allow-headers").contains("x-grpc-web"));
        server.stop().await;
    })
    .await;
}

async fn preflight(url: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
        .request(
            reqwest::Method::OPTIONS,
            format!("{url}/streamgate.v1.EventGateway/Publish"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent,authorization",
        )
        .send()
        .await
        .expect("preflight")
}

pub fn grpcurl() -> String {
    std::env::var("STREAMGATE_TEST_GRPCURL").unwrap_or_else(|_| "grpcurl".to_owned())
}

fn run_grpcurl(args: &[&str]) -> String {
    let output = Command::new(grpcurl())
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run grpcurl ({e}); run the README's test command, which installs it")
        });
    assert!(
        output.status.success(),
        "grpcurl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_the_service_publishes_with_a_json_body_and_reads_with_a_mask() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let addr = server.addr.to_string();
        let listed = run_grpcurl(&["-plaintext", &addr, "list"]);
        assert!(
            listed.lines().any(|l| l == "streamgate.v1.EventGateway"),
            "{listed}"
        );
        assert!(
            listed.lines().any(|l| l == "grpc.health.v1.Health"),
            "{listed}"
        );

        let described = run_grpcurl(&[
            "-plaintext",
            &addr,
            "describe",
            "streamgate.v1.EventGateway",
        ]);
        for rpc in [
            "Publish",
            "PublishStream",
            "Subscribe",
            "ControlSupplier",
            "WatchPageStats",
            "ListTopics",
        ] {
            assert!(
                described.contains(&format!("rpc {rpc} ("))
                    || described.contains(&format!("rpc {rpc}(")),
                "{described}"
            );
        }

        let body = format!(
            r#"{{"topic":"{topic}","page_event":{{"name":"P1","user":"U1","duration_ms":42}}}}"#
        );
        let published = run_grpcurl(&[
            "-plaintext",
            "-d",
            &body,
            &addr,
            "streamgate.v1.EventGateway/Publish",
        ]);
        let ack: serde_json::Value = serde_json::from_str(&published).expect("grpcurl prints JSON");
        assert_eq!(ack["topic"], topic.as_str());

        let records = crate::support::read_all(&server, &topic, 1).await;
        let event = records[0].page_event.as_ref().expect("page event");
        assert_eq!(
            (
                event.name.as_str(),
                event.user.as_deref(),
                event.duration_ms
            ),
            ("P1", Some("U1"), Some(42))
        );

        // A read mask in the message form grpcurl 1.8 reads (its JSON parser does not know
        // FieldMask's string form): only the PageEvent comes.
        let body = format!(
            r#"{{"topics":["{topic}"],"start":{{"earliest":true}},"max_records":1,"read_mask":{{"paths":["page_event"]}}}}"#
        );
        let read = run_grpcurl(&[
            "-plaintext",
            "-d",
            &body,
            &addr,
            "streamgate.v1.EventGateway/Subscribe",
        ]);
        let messages: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&read)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("grpcurl prints JSON");
        let record = &messages
            .iter()
            .find(|m| m.get("records").is_some())
            .unwrap_or_else(|| panic!("no records in {read}"))["records"]["records"][0];
        assert_eq!(record["pageEvent"]["name"], "P1", "{read}");
        let fields: Vec<&String> = record.as_object().expect("a record").keys().collect();
        assert_eq!(fields, ["pageEvent"], "{read}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_once_topics_exist() {
    on_each_broker(|server| async move {
        // On an external cluster the topics are created in the background: NOT_SERVING
        // until then, which must turn into SERVING without any help. (On the real broker
        // `on_each_broker` has already waited for it; this asks it of both.)
        server.wait_serving().await;
        server.stop().await;
    })
    .await;
}

/// Stopping the server ends open Subscribe and PublishStream calls with UNAVAILABLE, and
/// `run` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_and_returns() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let mut stream = client
            .subscribe(subscribe_request(&topic, None, None))
            .await
            .expect("subscribe")
            .into_inner();
        let _assignment = next_message(&mut stream, Duration::from_secs(30)).await;
        let (_keep_open, requests) = tokio::sync::mpsc::channel::<proto::PublishRequest>(1);
        let mut publishing = client
            .publish_stream(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await
            .expect("publish stream")
            .into_inner();

        server.stop().await; // bounded: panics if `run` does not return in time

        let end = within(
            Duration::from_secs(10),
            "the Subscribe stream ends",
            futures::StreamExt::next(&mut stream),
        )
        .await;
        match end {
            Some(Err(status)) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
            None => {}
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
        }
        let end = within(
            Duration::from_secs(10),
            "the PublishStream ends",
            publishing.message(),
        )
        .await;
        assert!(end.is_err() || matches!(end, Ok(None)), "{end:?}");
    })
    .await;
}
