//! Unit tests of the request guard.

use super::*;

fn loopback_rules() -> GuardRules {
    GuardRules {
        allowed_hosts: Some(vec!["gateway.internal".into(), ".corp.example".into()]),
        cors_origins: vec!["https://ops.example.com".into()],
    }
}

fn request(host: &str, extra: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::post("/streamgate.v1.EventGateway/Publish")
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/grpc-web+proto");
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("a request")
}

#[test]
fn serves_ip_literals_localhost_and_the_allowed_names() {
    let rules = loopback_rules();
    for host in [
        "127.0.0.1:8080",
        "10.1.2.3",
        "[::1]:8080",
        "localhost:8080",
        "LOCALHOST",
        "app.localhost:1",
        "gateway.internal:8080",
        "corp.example",
        "a.b.corp.example:443",
    ] {
        assert_eq!(rules.check(&request(host, &[])), Ok(()), "{host}");
    }
}

/// The DNS-rebinding case: a page on evil.example, re-pointed at 127.0.0.1.
#[test]
fn refuses_other_names_with_the_name_escaped() {
    let rules = loopback_rules();
    for host in [
        "evil.example:8080",
        "gateway.internal.evil.example",
        "localhost.evil.example",
        "xcorp.example",
        "[not-an-ip]:80",
    ] {
        assert!(
            matches!(rules.check(&request(host, &[])), Err(Refusal::Host(_))),
            "{host}"
        );
    }
    let sneaky = request("evil\u{202e}elpmaxe", &[]);
    let refusal = rules.check(&sneaky).expect_err("refused");
    assert!(refusal.to_string().contains("\\u{202e}"), "{refusal}");
    let no_host = Request::post("/x").body(()).expect("a request");
    assert_eq!(rules.check(&no_host), Err(Refusal::NoHost));
}

#[test]
fn a_tls_port_serves_any_host() {
    let rules = GuardRules {
        allowed_hosts: None,
        ..loopback_rules()
    };
    assert_eq!(rules.check(&request("evil.example:8080", &[])), Ok(()));
}

#[test]
fn only_this_server_and_listed_origins_may_call() {
    let rules = loopback_rules();
    let with_origin = |origin| request("127.0.0.1:8080", &[("origin", origin)]);
    assert_eq!(rules.check(&with_origin("http://127.0.0.1:8080")), Ok(()));
    assert_eq!(rules.check(&with_origin("https://ops.example.com")), Ok(()));
    for origin in [
        "http://evil.example",
        "http://127.0.0.1:9999",
        "null",
        "https://ops.example.com.evil.example",
    ] {
        assert!(
            matches!(rules.check(&with_origin(origin)), Err(Refusal::Origin(_))),
            "{origin}"
        );
    }
}

/// A CORS-simple request (text/plain, which a browser sends cross-site without a
/// preflight) never reaches a service, even from an allowed origin; GETs and preflights
/// carry no body and pass.
#[test]
fn only_grpc_bodies_reach_the_services() {
    let rules = loopback_rules();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut simple = request("127.0.0.1:8080", &[]);
        simple
            .headers_mut()
            .insert(CONTENT_TYPE, content_type.parse().expect("a header value"));
        assert!(
            matches!(rules.check(&simple), Err(Refusal::ContentType(_))),
            "{content_type:?}"
        );
    }
    for content_type in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web-text",
    ] {
        let mut grpc = request("127.0.0.1:8080", &[]);
        grpc.headers_mut()
            .insert(CONTENT_TYPE, content_type.parse().expect("a header value"));
        assert_eq!(rules.check(&grpc), Ok(()), "{content_type}");
    }
    let get = Request::get("/metrics")
        .header(HOST, "localhost:8080")
        .body(())
        .expect("a request");
    assert_eq!(rules.check(&get), Ok(()));
}

#[test]
fn a_refusal_is_403_or_415_with_a_grpc_status() {
    let forbidden = refused(&Refusal::Host("evil.example".into()));
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(forbidden.headers()["grpc-status"], "7");
    let unsupported = refused(&Refusal::ContentType("text/plain".into()));
    assert_eq!(unsupported.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
