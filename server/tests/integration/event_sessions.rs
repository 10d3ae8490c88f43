//! Plain HTTP clients on a locked server: TLS and an auth file. curl's Connect calls and SSE
//! streams are refused without a token and served with one; a browser's EventSource, which
//! cannot send one, uses the cookie an authenticated OpenEventSession call sets — on the SSE
//! routes only, with its opener's permissions, until it expires.

use std::time::Duration;

use serde_json::{Value, json};
use streamgate_server::Settings;
use streamgate_testkit::AuthFile;
use streamgate_testkit::on_each_broker_tls;
use streamgate_testkit::tls::{TestTls, path_arg};

use crate::connect::{curl, json_of, url};
use crate::sse::events;
use crate::support::{TestServer, eventually};

const WRITER: &str = "writer-token";
const VIEWER: &str = "viewer-token";

fn auth_file() -> AuthFile {
    AuthFile::new(&[
        (
            "writer",
            WRITER,
            &["publish:*", "subscribe:*", "stats", "topics"],
        ),
        ("viewer", VIEWER, &["stats"]),
    ])
}

/// curl's arguments for a JSON Connect call of `method` with `body`, trusting the test CA.
fn connect_call(server: &TestServer, method: &str, body: &Value, extra: &[&str]) -> Vec<String> {
    let tls = server.tls.as_ref().expect("a TLS server");
    let mut args: Vec<String> = ["--cacert", &path_arg(&tls.ca.path)]
        .into_iter()
        .map(str::to_owned)
        .collect();
    args.extend(["-H", "content-type: application/json", "-d"].map(str::to_owned));
    args.push(body.to_string());
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.push(url(server, method));
    args
}

async fn call(server: &TestServer, method: &str, body: &Value, extra: &[&str]) -> (u16, Value) {
    let args = connect_call(server, method, body, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, body) = curl(&args).await;
    (status, json_of(&body))
}

/// The checks, on a TLS server with an auth file: without a token every request is
/// refused (401, Connect's `unauthenticated`); with one, Publish answers where the record
/// went, a bad topic is 400 `invalid_argument`, and both SSE streams serve events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_on_a_locked_server_is_refused_without_a_token_and_served_with_one() {
    let file = auth_file();
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_tls(TestTls::new, auth, |server| async move {
        let topic = server.topic(1).await;
        let record = json!({"topic": topic, "page_event": {"name": "P1"}});
        let bearer = format!("authorization: Bearer {WRITER}");
        let token = ["-H", bearer.as_str()];

        let (status, refused) = call(&server, "Publish", &record, &[]).await;
        assert_eq!((status, &refused["code"]), (401, &json!("unauthenticated")));
        let (status, ack) = call(&server, "Publish", &record, &token).await;
        assert_eq!((status, &ack["topic"]), (200, &json!(topic)), "{ack}");
        assert_eq!(
            (&ack["partition"], &ack["offset"]),
            (&json!(0), &json!("0"))
        );
        let bad = json!({"topic": "no such topic!", "value": "eA=="});
        let (status, error) = call(&server, "Publish", &bad, &token).await;
        assert_eq!((status, &error["code"]), (400, &json!("invalid_argument")));

        for path in [
            "/analytics",
            &format!("/v1/topics/{topic}/records?from=earliest"),
        ] {
            let refused = events(&server, path, &[], 1).await;
            assert!(refused.is_empty(), "{path} without a token: {refused:?}");
            let served = events(&server, path, &[&bearer], 1).await;
            assert_eq!(served.len(), 1, "{path} with a token");
        }
        let records = events(
            &server,
            &format!("/v1/topics/{topic}/records?from=earliest&max_records=1"),
            &[&bearer],
            1,
        )
        .await;
        assert_eq!(
            records[0].data["pageEvent"]["name"], "P1",
            "{:?}",
            records[0]
        );
        server.stop().await;
    })
    .await;
}

/// OpenEventSession sets an HttpOnly, SameSite=Strict, Secure cookie. That cookie alone
/// reads a records stream; it publishes nothing and lists nothing (the cookie counts on
/// the SSE routes only); it carries its opener's permissions, not more; a forged one is
/// refused, saying how to get a real one; and once expired it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_session_cookie_reads_the_sse_routes_and_nothing_else() {
    let file = auth_file();
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_tls(TestTls::new, auth, |server| async move {
        let topic = server.topic(1).await;
        let bearer = format!("authorization: Bearer {WRITER}");
        for value in ["YQ==", "Yg=="] {
            let record = json!({"topic": topic, "value": value});
            assert_eq!(
                call(&server, "Publish", &record, &["-H", &bearer]).await.0,
                200
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let jar = |name: &str| path_arg(&dir.path().join(name));
        let (writer_jar, viewer_jar) = (jar("writer"), jar("viewer"));
        let headers = path_arg(&dir.path().join("headers"));

        let extra = ["-H", &bearer, "-c", &writer_jar, "-D", &headers];
        let (status, opened) = call(&server, "OpenEventSession", &json!({}), &extra).await;
        assert_eq!(status, 200, "{opened}");
        assert_eq!(opened["cookieName"], "streamgate_session");
        assert!(opened["expiresAt"].is_string(), "{opened}");
        let sent = std::fs::read_to_string(&headers).expect("headers");
        let set_cookie = sent
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .unwrap_or_else(|| panic!("no set-cookie in {sent}"));
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=900",
        ] {
            assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
        }

        let cookie = format!("-b {writer_jar}");
        let records = format!("/v1/topics/{topic}/records?from=earliest&max_records=2");
        let read = events(&server, &records, &[&cookie], 2).await;
        let values: Vec<&Value> = read.iter().map(|e| &e.data["value"]).collect();
        assert_eq!(values, [&json!("YQ=="), &json!("Yg==")]);

        let record = json!({"topic": topic, "value": "eA=="});
        let (status, refused) = call(&server, "Publish", &record, &["-b", &writer_jar]).await;
        assert_eq!((status, &refused["code"]), (401, &json!("unauthenticated")));
        let (status, _) = call(&server, "ListTopics", &json!({}), &["-b", &writer_jar]).await;
        assert_eq!(status, 401, "a session cookie does not list topics");

        let viewer = format!("authorization: Bearer {VIEWER}");
        let extra = ["-H", &viewer, "-c", &viewer_jar];
        call(&server, "OpenEventSession", &json!({"ttl": "2s"}), &extra).await;
        let viewer_cookie = format!("-b {viewer_jar}");
        assert_eq!(
            events(&server, "/analytics", &[&viewer_cookie], 1)
                .await
                .len(),
            1
        );
        let (status, denied) = sse_error(&server, &records, &["-b", &viewer_jar]).await;
        assert_eq!(
            (status, &denied["code"]),
            (403, &json!("permission_denied"))
        );

        let forged = "cookie: streamgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let (status, refused) = sse_error(&server, "/analytics", &["-H", forged]).await;
        assert_eq!(status, 401);
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.contains("OpenEventSession"), "{refused}");

        // The viewer's session was opened for two seconds: a stream it opened ends then, and
        // the cookie is refused from then on.
        eventually(Duration::from_secs(20), "the session expires", async || {
            sse_get(&server, "/analytics", &["-b", &viewer_jar]).await.0 == 401
        })
        .await;
        server.stop().await;
    })
    .await;
}

/// The status and error JSON of an SSE route that refuses the request.
async fn sse_error(server: &TestServer, path: &str, extra: &[&str]) -> (u16, Value) {
    let (status, body) = sse_get(server, path, extra).await;
    assert_ne!(status, 200, "{path} was served");
    (status, json_of(&body))
}

/// GET `path` with curl until the stream ends (at most 30 s): its status and body.
async fn sse_get(server: &TestServer, path: &str, extra: &[&str]) -> (u16, bytes::Bytes) {
    let tls = server.tls.as_ref().expect("a TLS server");
    let ca = path_arg(&tls.ca.path);
    let url = format!("{}{path}", server.url());
    let mut args = vec!["--cacert", &ca];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args).await
}
