//! Authentication and authorization on a server with `--auth-file`: every RPC without a
//! token, with an unknown one, with one that lacks the permission, and with one that has
//! it; what is reserved to admins; JWTs; and the doors that stay open (health).

use std::time::Duration;

use futures::StreamExt;
use streamgate::proto::{self, start_position::Position};
use streamgate_server::Settings;
use streamgate_server::settings::AuthSources;
use streamgate_testkit::{ADMIN_TOKEN, AuthFile, authenticator, unchanged};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{
    TestServer, on_each_broker_with, random_name, subscribe_request, topic_name, within,
};
use streamgate_testkit::on_each_broker_tls;

type Client = proto::event_gateway_client::EventGatewayClient<
    InterceptedService<Channel, streamgate::auth::BearerToken>,
>;

const READER: &str = "reader-token";
const WRITER: &str = "writer-token";
const OPS: &str = "ops-token";
const POWER: &str = "power-token";

fn auth_file() -> AuthFile {
    AuthFile::new(&[
        (
            "reader",
            READER,
            &["subscribe:t-*", "group:team-*", "stats", "topics"],
        ),
        ("writer", WRITER, &["publish:t-*"]),
        ("ops", OPS, &["supplier"]),
        (
            "power",
            POWER,
            &[
                "publish:*",
                "subscribe:*",
                "group:*",
                "supplier",
                "stats",
                "topics",
            ],
        ),
    ])
}

/// The RPCs, each called in a way that succeeds when the caller is allowed.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    Publish,
    PublishStream,
    Subscribe,
    ControlSupplier,
    WatchPageStats,
    ListTopics,
}

const RPCS: [Rpc; 6] = [
    Rpc::Publish,
    Rpc::PublishStream,
    Rpc::Subscribe,
    Rpc::ControlSupplier,
    Rpc::WatchPageStats,
    Rpc::ListTopics,
];

impl Rpc {
    /// A token allowed to make the call, one that is not, and the permission it lacks.
    fn tokens(self, topic: &str) -> (&'static str, &'static str, String) {
        match self {
            Rpc::Publish => (WRITER, READER, format!("publish:{topic}")),
            // Refused before it takes a slot: the caller may publish nowhere.
            Rpc::PublishStream => (WRITER, READER, "publish:<any topic>".to_owned()),
            Rpc::Subscribe => (READER, WRITER, format!("subscribe:{topic}")),
            Rpc::ControlSupplier => (OPS, READER, "supplier".into()),
            Rpc::WatchPageStats => (READER, WRITER, "stats".into()),
            Rpc::ListTopics => (READER, WRITER, "topics".into()),
        }
    }

    /// The call's outcome: Ok, or the status (for PublishStream, the call's or the
    /// record's).
    async fn call(self, client: &mut Client, topic: &str) -> Result<(), tonic::Status> {
        let publish = proto::PublishRequest {
            topic: topic.to_owned(),
            payload: Some(proto::publish_request::Payload::Value("v".into())),
            ..Default::default()
        };
        match self {
            Rpc::Publish => client.publish(publish).await.map(drop),
            Rpc::PublishStream => {
                let mut results = client
                    .publish_stream(futures::stream::iter([publish]))
                    .await?
                    .into_inner();
                let result = results.next().await.expect("one result")?;
                match result.outcome.expect("outcome") {
                    proto::publish_result::Outcome::Ack(_) => Ok(()),
                    proto::publish_result::Outcome::Error(e) => {
                        Err(tonic::Status::new(Code::from(e.code), e.message))
                    }
                }
            }
            Rpc::Subscribe => client
                .subscribe(subscribe_request(topic, None, Some(Position::Latest(true))))
                .await
                .map(drop),
            Rpc::ControlSupplier => client
                .control_supplier(proto::ControlSupplierRequest::default())
                .await
                .map(drop),
            Rpc::WatchPageStats => client
                .watch_page_stats(proto::WatchPageStatsRequest::default())
                .await
                .map(drop),
            Rpc::ListTopics => client
                .list_topics(proto::ListTopicsRequest::default())
                .await
                .map(drop),
        }
    }
}

async fn code_of(
    server: &TestServer,
    token: Option<&str>,
    rpc: Rpc,
    topic: &str,
) -> Result<(), tonic::Status> {
    let mut client = server.client_with_token(token).await;
    within(
        Duration::from_secs(30),
        "the call",
        rpc.call(&mut client, topic),
    )
    .await
}

fn expect_code(outcome: Result<(), tonic::Status>, code: Code, what: &str) -> String {
    match outcome {
        Err(status) if status.code() == code => status.message().to_owned(),
        other => panic!("{what}: expected {code:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_needs_a_known_token_that_holds_its_permission() {
    let file = auth_file();
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let topic = server.topic(1).await;
        for rpc in RPCS {
            let (allowed, refused, permission) = rpc.tokens(&topic);
            let what = |case: &str| format!("{rpc:?} {case}");
            let message = expect_code(
                code_of(&server, None, rpc, &topic).await,
                Code::Unauthenticated,
                &what("without a token"),
            );
            assert!(message.contains("authorization: Bearer"), "{message}");
            expect_code(
                code_of(&server, Some("not-a-known-token"), rpc, &topic).await,
                Code::Unauthenticated,
                &what("with an unknown token"),
            );
            let message = expect_code(
                code_of(&server, Some(refused), rpc, &topic).await,
                Code::PermissionDenied,
                &what("without the permission"),
            );
            assert!(
                message.contains(&format!("missing permission {permission} ")),
                "{message}"
            );
            if let Err(status) = code_of(&server, Some(allowed), rpc, &topic).await {
                panic!("{}: {status:?}", what("with the permission"));
            }
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_s_own_groups_internal_topics_stats_topic_and_offset_resets_are_admin_only() {
    let file = auth_file();
    // A stats topic of its own: the admin's write below must not reach a shared R4.
    let stats_topic = random_name("stats");
    on_each_broker_with(
        |s| {
            file.apply(s);
            s.topics.stats = topic_name(&stats_topic);
        },
        |server| {
            let stats_topic = stats_topic.clone();
            async move {
                let topic = server.topic(1).await;
                let mut power = server.client_with_token(Some(POWER)).await;
                let mut admin = server.client_with_token(Some(ADMIN_TOKEN)).await;
                let denied_admin = |outcome: Result<(), tonic::Status>, what: &str| {
                    let message = expect_code(outcome, Code::PermissionDenied, what);
                    assert!(
                        message.contains("missing permission admin "),
                        "{what}: {message}"
                    );
                };
                for reserved in [stats_topic.as_str(), "__consumer_offsets"] {
                    denied_admin(
                        Rpc::Publish.call(&mut power, reserved).await,
                        &format!("publish to {reserved}"),
                    );
                }
                Rpc::Publish
                    .call(&mut admin, &stats_topic)
                    .await
                    .expect("an admin may write the stats topic");

                denied_admin(
                    Rpc::Subscribe.call(&mut power, "__consumer_offsets").await,
                    "subscribe to an internal topic",
                );
                for group in ["streamgate-analytics", "streamgate-transform"] {
                    let outcome = power
                        .subscribe(subscribe_request(&topic, Some(group), None))
                        .await
                        .map(drop);
                    denied_admin(outcome, &format!("join the server's group {group}"));
                }
                let reset = subscribe_request(&topic, Some("team-x"), Some(Position::Offset(0)));
                denied_admin(
                    power.subscribe(reset.clone()).await.map(drop),
                    "reset a group's offsets",
                );
                admin
                    .subscribe(reset)
                    .await
                    .expect("an admin may reset a group");
                power
                    .subscribe(subscribe_request(
                        &topic,
                        Some("team-y"),
                        Some(Position::Earliest(true)),
                    ))
                    .await
                    .expect("earliest only applies without commits: not a reset");

                // A group needs group:<name> on top of subscribe:<topic>.
                let mut reader = server.client_with_token(Some(READER)).await;
                let message = expect_code(
                    reader
                        .subscribe(subscribe_request(&topic, Some("other"), None))
                        .await
                        .map(drop),
                    Code::PermissionDenied,
                    "a group outside the reader's glob",
                );
                assert!(
                    message.contains("missing permission group:other "),
                    "{message}"
                );

                let list_internal = proto::ListTopicsRequest {
                    include_internal: true,
                };
                denied_admin(
                    power.list_topics(list_internal).await.map(drop),
                    "list internal topics",
                );

                // Re-pointing the supplier needs the right to publish where it would write.
                let repoint = proto::ControlSupplierRequest {
                    settings: Some(proto::SupplierSettingsUpdate {
                        topic: Some(stats_topic.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                denied_admin(
                    power.control_supplier(repoint).await.map(drop),
                    "point the supplier at R4",
                );
                server.stop().await;
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_missing_topic_is_not_found_and_creates_nothing() {
    let file = auth_file();
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let missing = random_name("t-missing");
        let mut admin = server.client_with_token(Some(ADMIN_TOKEN)).await;
        for rpc in [Rpc::Publish, Rpc::PublishStream] {
            expect_code(
                rpc.call(&mut admin, &missing).await,
                Code::NotFound,
                &format!("{rpc:?}"),
            );
        }
        let listed = admin
            .list_topics(proto::ListTopicsRequest::default())
            .await
            .expect("lists")
            .into_inner();
        assert!(
            !listed.topics.iter().any(|t| t.name == missing),
            "{missing} was created"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_open_and_reflection_needs_a_token() {
    let file = auth_file();
    let auth = |s: &mut Settings| file.apply(s);
    on_each_broker_with(auth, |server| async move {
        let channel = server.channel().await;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("health needs no token");
        assert_eq!(answer.into_inner().status, 1, "SERVING");

        let mut reflection =
            tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
                channel,
            );
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
            ..Default::default()
        };
        let outcome = reflection
            .server_reflection_info(futures::stream::iter([request]))
            .await;
        let status = match outcome {
            Err(status) => status,
            Ok(response) => response
                .into_inner()
                .next()
                .await
                .expect("an answer")
                .expect_err("reflection without a token"),
        };
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_over_tls_sends_the_token_as_a_header() {
    use streamgate_testkit::tls::{TestTls, path_arg};
    let file = auth_file();
    on_each_broker_tls(
        TestTls::new,
        |s| file.apply(s),
        |server| async move {
            // The certificate names localhost; grpcurl checks it.
            let addr = format!("localhost:{}", server.addr.port());
            let ca = path_arg(&server.tls.as_ref().expect("tls").ca.path);
            let grpcurl = |extra: &[&str]| {
                let mut args = vec!["-cacert", ca.as_str()];
                args.extend_from_slice(extra);
                args.extend_from_slice(&[&addr, "streamgate.v1.EventGateway/ListTopics"]);
                std::process::Command::new(crate::transports::grpcurl())
                    .args(&args)
                    .output()
                    .expect("grpcurl runs; the README's test command installs it")
            };
            let refused = grpcurl(&[]);
            assert!(!refused.status.success());
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(stderr.contains("Unauthenticated"), "{stderr}");
            let header = format!("authorization: Bearer {READER}");
            let listed = grpcurl(&["-H", &header]);
            let stdout = String::from_utf8_lossy(&listed.stdout);
            assert!(
                listed.status.success(),
                "{stdout} {}",
                String::from_utf8_lossy(&listed.stderr)
            );
            assert!(stdout.contains("\"topics\""), "{stdout}");
            server.stop().await;
        },
    )
    .await;
}

fn jwt(secret: &[u8], sub: &str, scope: &str, exp: u64) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": sub, "scope": scope, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("encodes")
}

fn epoch_seconds() -> u64 {
    streamgate::time::now_millis() as u64 / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_grants_its_scope_and_its_expiry_ends_a_long_stream() {
    let secret = b"a test secret that is long enough to sign HS256";
    let key = tempfile::NamedTempFile::new().expect("key file");
    std::fs::write(key.path(), secret).expect("write key");
    let file = auth_file();
    on_each_broker_with(
        |s| {
            s.authenticator = authenticator(AuthSources {
                jwt_key: Some(key.path().to_owned()),
                ..file.sources(s)
            });
            s.analytics.tick = Duration::from_millis(200);
        },
        |server| async move {
            let topic = server.topic(1).await;
            let token = jwt(
                secret,
                "ci-job",
                "openid topics stats",
                epoch_seconds() + 3600,
            );
            let mut client = server.client_with_token(Some(&token)).await;
            Rpc::ListTopics
                .call(&mut client, &topic)
                .await
                .expect("scope grants topics");
            let message = expect_code(
                Rpc::Publish.call(&mut client, &topic).await,
                Code::PermissionDenied,
                "publish without the scope",
            );
            assert!(message.contains("\"ci-job\""), "{message}");

            let expired = jwt(secret, "ci-job", "topics", epoch_seconds() - 10);
            let mut client = server.client_with_token(Some(&expired)).await;
            let message = expect_code(
                Rpc::ListTopics.call(&mut client, &topic).await,
                Code::Unauthenticated,
                "an expired token",
            );
            assert!(message.contains("expired"), "{message}");
            let forged = jwt(
                b"some other secret, long enough for HS256 too",
                "x",
                "admin",
                epoch_seconds() + 3600,
            );
            let mut client = server.client_with_token(Some(&forged)).await;
            expect_code(
                Rpc::ListTopics.call(&mut client, &topic).await,
                Code::Unauthenticated,
                "a forged token",
            );

            // A stream opened with a token that expires soon ends with UNAUTHENTICATED.
            let soon = jwt(secret, "ci-job", "stats", epoch_seconds() + 2);
            let mut client = server.client_with_token(Some(&soon)).await;
            let mut stats = client
                .watch_page_stats(proto::WatchPageStatsRequest::default())
                .await
                .expect("valid for now")
                .into_inner();
            let ended = within(
                Duration::from_secs(30),
                "the stream ends at the token's expiry",
                async {
                    loop {
                        match stats.next().await {
                            Some(Ok(_)) => continue,
                            Some(Err(status)) => break status,
                            None => panic!("the stream ended without a status"),
                        }
                    }
                },
            )
            .await;
            assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
            server.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_topics_lets_publish_create_a_topic_on_the_embedded_broker() {
    let kafka = std::sync::Arc::new(
        streamgate_server::Kafka::embedded(Vec::new()).expect("embedded broker"),
    );
    let server = TestServer::start(kafka, streamgate_testkit::BrokerKind::Embedded, |s| {
        s.auto_create_topics = true
    })
    .await;
    let topic = random_name("t-auto");
    let mut client = server.client_with_token(None).await;
    Rpc::Publish
        .call(&mut client, &topic)
        .await
        .expect("created on the fly");
    let listed = client
        .list_topics(proto::ListTopicsRequest::default())
        .await
        .expect("lists")
        .into_inner();
    assert!(
        listed.topics.iter().any(|t| t.name == topic),
        "{topic} is missing"
    );
    server.stop().await;
}

/// Protected mode, on the real binary: an open server on a non-loopback address does not
/// start, and says what to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_serve_other_machines_without_authentication() {
    let stderr =
        crate::support::refused_start(&["--listen", "0.0.0.0:0"], &["STREAMGATE_INSECURE_NO_AUTH"])
            .await;
    assert!(
        stderr.contains("--auth-file") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
}

/// Mutual TLS with an auth file: a caller without a token is the principal named like its
/// certificate's Common Name, with that principal's permissions; a certificate the file does
/// not name is UNAUTHENTICATED; a token still wins over the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_signs_in_the_principal_of_its_name() {
    use streamgate_testkit::tls::{ClientTls, TestTls};
    let file = auth_file().with_certificate_principal("test-client", &["topics"]);
    on_each_broker_tls(
        TestTls::mutual,
        |s| file.apply(s),
        |server| async move {
            let topic = server.topic(1).await;
            let mut by_certificate = server.client_with_token(None).await;
            Rpc::ListTopics
                .call(&mut by_certificate, &topic)
                .await
                .expect("topics");
            let message = expect_code(
                Rpc::Publish.call(&mut by_certificate, &topic).await,
                Code::PermissionDenied,
                "publish by certificate",
            );
            assert!(message.contains("\"test-client\""), "{message}");

            let mut by_token = server.client_with_token(Some(WRITER)).await;
            Rpc::Publish
                .call(&mut by_token, &topic)
                .await
                .expect("the token's permissions");

            let tls = server.tls.clone().expect("tls");
            let client_ca = tls.client_ca.as_ref().expect("client ca");
            let stranger = ClientTls {
                identity: Some(client_ca.client_cert(tls.dir.path(), "stranger")),
                ..tls.client_tls()
            };
            let channel = stranger
                .channel(server.addr)
                .await
                .expect("a verified certificate connects");
            let mut client = proto::event_gateway_client::EventGatewayClient::new(channel);
            let status = client
                .list_topics(proto::ListTopicsRequest::default())
                .await
                .expect_err("a subject the auth file does not name");
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert!(status.message().contains("stranger"), "{status:?}");
            server.stop().await;
        },
    )
    .await;
}

/// Mutual TLS alone locks the door: every verified certificate is an admin, and the
/// protected mode accepts it as authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_an_auth_file_makes_verified_clients_admins() {
    use streamgate_testkit::tls::TestTls;
    on_each_broker_tls(TestTls::mutual, unchanged, |server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client_with_token(None).await;
        Rpc::Publish
            .call(&mut client, &topic)
            .await
            .expect("admin by certificate");
        server.stop().await;
    })
    .await;
    let tls = TestTls::mutual();
    let mut args = vec!["--listen".to_owned(), "0.0.0.0:0".to_owned()];
    args.push("--insecure-embedded-broker".to_owned());
    args.extend(tls.server_args());
    let config = <streamgate_server::Config as clap::Parser>::try_parse_from(
        std::iter::once("streamgate-server".to_owned()).chain(args),
    )
    .expect("parses");
    streamgate_server::Settings::resolve(&config).expect("mutual TLS counts as authentication");
}

/// The embedded broker's port takes any local process without a token, so with an auth
/// file the binary refuses to start on it, naming the flag that accepts the side door; with
/// that flag it starts, and says so in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_on_the_embedded_broker_needs_the_side_door_acknowledged() {
    let file = auth_file();
    let unset = ["STREAMGATE_BROKERS", "STREAMGATE_INSECURE_EMBEDDED_BROKER"];
    let stderr = crate::support::refused_start(
        &["--listen", "127.0.0.1:0", "--auth-file", file.arg()],
        &unset,
    )
    .await;
    assert!(
        stderr.contains("embedded broker") && stderr.contains("--insecure-embedded-broker"),
        "{stderr}"
    );
    let server = crate::process::ServerProcess::start(&[
        "--auth-file",
        file.arg(),
        "--insecure-embedded-broker",
    ])
    .await;
    let warned = server
        .wait_for_line(
            &["--insecure-embedded-broker", "without authentication"],
            Duration::from_secs(30),
        )
        .await;
    assert!(warned.is_some(), "no warning in the log");
    server.kill().await;
}
