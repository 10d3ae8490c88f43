//! Typed topics and filters on each broker, with a schema file mapping `orders-*` to a
//! Protobuf message (`shop.v1.Order`, tests/fixtures/schemas) and `payments-*` to a JSON
//! Schema: values checked at Publish, PublishStream and Connect JSON; JSON encoded to
//! Protobuf binary; values decoded on Subscribe and Consume; CEL filters over key, headers
//! and decoded fields, in groups too; bad filters refused with their position.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use prost::Message as _;
use serde_json::json;
use streamgate::proto::{
    self, PublishRequest, consume_request, consume_response, publish_request, publish_result,
    start_position,
};
use streamgate_server::Settings;
use streamgate_testkit::TestServer;
use tonic::Code;

use crate::connect::{curl, json_of, url};
use crate::support::{
    eventually, next_message, on_each_broker_with, records_of, subscribe_request, within,
};
use streamgate::proto::admin_service_client::AdminServiceClient;

/// `shop.v1.Order` (tests/fixtures/schemas/orders.proto), as a Kafka client's generated
/// code would decode it.
#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(int64, tag = "2")]
    amount: i64,
    #[prost(string, tag = "3")]
    currency: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schemas")
}

/// A schema file typing `orders-*` and `payments-*`, written next to the test's other files.
fn with_schemas(settings: &mut Settings) {
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let file = dir.join("schemas.toml");
    let fixtures = fixtures();
    std::fs::write(
        &file,
        format!(
            "[[topic]]\nname = \"orders-*\"\nprotobuf = {{ descriptor_set = {:?}, message = \"shop.v1.Order\" }}\n\n\
             [[topic]]\nname = \"payments-*\"\njson_schema = {:?}\n",
            fixtures.join("orders.binpb"),
            fixtures.join("payment.schema.json"),
        ),
    )
    .expect("schema file written");
    settings
        .use_schemas(Some(file))
        .expect("the schema file loads");
}

fn json_value(value: serde_json::Value) -> prost_types::Value {
    fn convert(value: serde_json::Value) -> prost_types::Value {
        use prost_types::value::Kind;
        let kind = match value {
            serde_json::Value::Null => Kind::NullValue(0),
            serde_json::Value::Bool(b) => Kind::BoolValue(b),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().expect("a number")),
            serde_json::Value::String(s) => Kind::StringValue(s),
            serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
                values: items.into_iter().map(convert).collect(),
            }),
            serde_json::Value::Object(map) => Kind::StructValue(prost_types::Struct {
                fields: map.into_iter().map(|(k, v)| (k, convert(v))).collect(),
            }),
        };
        prost_types::Value { kind: Some(kind) }
    }
    convert(value)
}

fn publish_json(topic: &str, key: &str, value: serde_json::Value) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        key: Some(Bytes::from(key.to_owned())),
        payload: Some(publish_request::Payload::Json(json_value(value))),
        ..Default::default()
    }
}

fn publish_raw(topic: &str, value: &[u8]) -> PublishRequest {
    PublishRequest {
        topic: topic.to_owned(),
        payload: Some(publish_request::Payload::Value(Bytes::copy_from_slice(
            value,
        ))),
        ..Default::default()
    }
}

async fn refused(server: &TestServer, request: PublishRequest) -> tonic::Status {
    let mut client = server.client().await;
    within(Duration::from_secs(30), "publish", client.publish(request))
        .await
        .expect_err("the value is refused")
}

/// Reads `count` records of `topic` from the earliest offset, with `filter` and `decode`.
async fn read(
    server: &TestServer,
    topic: &str,
    group: Option<&str>,
    filter: &str,
    decode: bool,
    count: u64,
) -> Vec<proto::Record> {
    let mut client = server.client().await;
    let mut request =
        subscribe_request(topic, group, Some(start_position::Position::Earliest(true)));
    request.filter = filter.to_owned();
    request.decode = decode;
    request.max_records = Some(count);
    let mut stream = within(
        Duration::from_secs(30),
        "subscribe",
        client.subscribe(request),
    )
    .await
    .expect("subscribed")
    .into_inner();
    let mut records = Vec::new();
    while (records.len() as u64) < count {
        let message = next_message(&mut stream, Duration::from_secs(30)).await;
        records.extend(records_of(message));
    }
    records
}

/// Writes `value` to `topic` straight through librdkafka, as any producer may.
async fn produce_raw(server: &TestServer, topic: &str, value: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = server.kafka.client_config().create().expect("producer");
    producer
        .send(
            FutureRecord::<(), _>::to(topic).payload(value),
            Duration::from_secs(30),
        )
        .await
        .expect("written");
}

fn decoded_json(record: &proto::Record) -> serde_json::Value {
    fn convert(value: &prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match &value.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => json!(b),
            Some(Kind::NumberValue(n)) => json!(n),
            Some(Kind::StringValue(s)) => json!(s),
            Some(Kind::ListValue(l)) => l.values.iter().map(convert).collect(),
            Some(Kind::StructValue(s)) => s
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), convert(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    convert(record.decoded.as_ref().unwrap_or_else(|| {
        panic!(
            "record {} not decoded: {:?}",
            record.offset, record.decode_error
        )
    }))
}

/// Publish of a JSON order stores it as Protobuf binary that the message's generated code
/// decodes; a field the message lacks, a wrong type, or bytes that are no encoding of it
/// are refused naming the problem; a JSON Schema topic refuses a value with the JSON
/// pointer of what breaks the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_checks_and_encodes_values_by_schema() {
    on_each_broker_with(with_schemas, async |server| {
        let orders = server.topic_named("orders", 1).await;
        let payments = server.topic_named("payments", 1).await;
        let mut client = server.client().await;
        let order = json!({"id": "o-1", "amount": "1200", "currency": "EUR"});
        within(
            Duration::from_secs(30),
            "publish",
            client.publish(publish_json(&orders, "o-1", order)),
        )
        .await
        .expect("a valid order is published");
        let stored = read(&server, &orders, None, "", false, 1).await;
        let bytes = stored[0].value.clone().expect("a value");
        let decoded = Order::decode(bytes).expect("the stored value is the Protobuf encoding");
        assert_eq!(
            decoded,
            Order {
                id: "o-1".into(),
                amount: 1200,
                currency: "EUR".into()
            }
        );

        let unknown = refused(
            &server,
            publish_json(&orders, "o-2", json!({"id": "o-2", "colour": "red"})),
        )
        .await;
        assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
        assert!(unknown.message().contains("colour"), "{unknown:?}");
        let wrong = refused(
            &server,
            publish_json(&orders, "o-3", json!({"id": "o-3", "amount": "lots"})),
        )
        .await;
        assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
        assert!(wrong.message().contains("amount"), "{wrong:?}");
        let garbage = refused(&server, publish_raw(&orders, &[0x0a, 0xff, 0x01])).await;
        assert_eq!(garbage.code(), Code::InvalidArgument, "{garbage:?}");

        let bad_payment = refused(
            &server,
            publish_raw(&payments, br#"{"amount": -5, "currency": "EUR"}"#),
        )
        .await;
        assert_eq!(bad_payment.code(), Code::InvalidArgument, "{bad_payment:?}");
        assert!(bad_payment.message().contains("/amount"), "{bad_payment:?}");
        within(
            Duration::from_secs(30),
            "publish",
            client.publish(publish_raw(
                &payments,
                br#"{"amount": 5, "currency": "EUR"}"#,
            )),
        )
        .await
        .expect("a valid payment is published");
    })
    .await;
}

/// In a PublishStream a refused value gets its own error result and the stream goes on;
/// Connect JSON (curl) publishes a typed Protobuf record and is refused like gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_stream_and_connect_json_are_checked_too() {
    on_each_broker_with(with_schemas, async |server| {
        let orders = server.topic_named("orders", 1).await;
        let mut client = server.client().await;
        let requests = vec![
            publish_json(&orders, "a", json!({"id": "a", "amount": "1"})),
            publish_json(&orders, "b", json!({"id": "b", "colour": "red"})),
            publish_json(&orders, "c", json!({"id": "c", "amount": "3"})),
        ];
        let mut results = within(
            Duration::from_secs(30),
            "publish stream",
            client.publish_stream(futures::stream::iter(requests)),
        )
        .await
        .expect("stream opened")
        .into_inner();
        let mut outcomes = Vec::new();
        while let Some(result) = within(Duration::from_secs(30), "result", results.next()).await {
            let result = result.expect("a result");
            outcomes.push((result.sequence, result.outcome.expect("an outcome")));
            if outcomes.len() == 3 {
                break;
            }
        }
        outcomes.sort_by_key(|(sequence, _)| *sequence);
        assert!(matches!(outcomes[0].1, publish_result::Outcome::Ack(_)));
        match &outcomes[1].1 {
            publish_result::Outcome::Error(error) => {
                assert_eq!(error.code, Code::InvalidArgument as i32);
                assert!(error.message.contains("colour"), "{error:?}");
            }
            other => panic!("the bad order was not refused: {other:?}"),
        }
        assert!(matches!(outcomes[2].1, publish_result::Outcome::Ack(_)));

        let headers = ["-H", "content-type: application/json"];
        let publish = url(&server, "Publish");
        let body = json!({"topic": orders, "json": {"id": "curl", "amount": "7"}}).to_string();
        let (status, answer) = curl(&[&headers[..], &["-d", &body, &publish]].concat()).await;
        assert_eq!(status, 200, "{:?}", json_of(&answer));
        let bad = json!({"topic": orders, "json": {"id": "curl", "colour": "red"}}).to_string();
        let (status, answer) = curl(&[&headers[..], &["-d", &bad, &publish]].concat()).await;
        let answer = json_of(&answer);
        assert_eq!((status, &answer["code"]), (400, &json!("invalid_argument")));
        assert!(
            answer["message"].as_str().unwrap_or("").contains("colour"),
            "{answer}"
        );

        let stored = read(&server, &orders, None, "", true, 3).await;
        let ids: Vec<_> = stored
            .iter()
            .map(|r| decoded_json(r)["id"].clone())
            .collect();
        assert_eq!(ids, [json!("a"), json!("c"), json!("curl")]);
    })
    .await;
}

/// Subscribe and Consume decode values as canonical JSON (int64 as a string) on a Protobuf
/// topic; a read mask path inside `decoded` keeps only that field; a value that does not
/// decode (written around the check, straight to Kafka) arrives raw with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_consume_decode_values() {
    on_each_broker_with(with_schemas, async |server| {
        let orders = server.topic_named("orders", 1).await;
        let mut client = server.client().await;
        for (id, amount) in [("a", "500"), ("b", "1500")] {
            client
                .publish(publish_json(
                    &orders,
                    id,
                    json!({"id": id, "amount": amount}),
                ))
                .await
                .expect("published");
        }
        // A value that is not an Order, written by a producer that bypasses the gateway.
        produce_raw(&server, &orders, b"not protobuf \xff\xff").await;

        let records = read(&server, &orders, None, "", true, 3).await;
        assert_eq!(
            decoded_json(&records[0]),
            json!({"id": "a", "amount": "500"})
        );
        assert_eq!(
            decoded_json(&records[1]),
            json!({"id": "b", "amount": "1500"})
        );
        assert!(records[2].decoded.is_none());
        assert!(!records[2].decode_error.is_empty(), "{:?}", records[2]);
        assert!(records[2].value.is_some(), "the raw value is still sent");

        let mut masked = subscribe_request(
            &orders,
            None,
            Some(start_position::Position::Earliest(true)),
        );
        masked.decode = true;
        masked.max_records = Some(1);
        masked.read_mask = Some(prost_types::FieldMask {
            paths: vec!["offset".into(), "decoded.amount".into()],
        });
        let mut stream = client
            .subscribe(masked)
            .await
            .expect("subscribed")
            .into_inner();
        let mut first = Vec::new();
        while first.is_empty() {
            first = records_of(next_message(&mut stream, Duration::from_secs(30)).await);
        }
        assert_eq!(decoded_json(&first[0]), json!({"amount": "500"}));
        assert!(first[0].value.is_none() && first[0].key.is_none());

        // Consume, with a filter too: only b, decoded. a is left out, and so is the value
        // that does not decode (the filter cannot be evaluated on it): both count as acked,
        // so once b is acked the group's commit passes all three.
        let group = streamgate_testkit::random_name("g");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(proto::ConsumeRequest {
            request: Some(consume_request::Request::Start(proto::ConsumeStart {
                group: group.clone(),
                topics: vec![orders.clone()],
                start: Some(proto::StartPosition {
                    position: Some(start_position::Position::Earliest(true)),
                }),
                filter: "value.amount > 1000".into(),
                decode: true,
                ..Default::default()
            })),
        })
        .await
        .expect("start sent");
        let mut consumed = client
            .consume(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("consuming")
            .into_inner();
        let delivered = loop {
            let message = within(Duration::from_secs(30), "consume", consumed.next())
                .await
                .expect("a message")
                .expect("not an error");
            if let Some(consume_response::Message::Records(batch)) = message.message {
                break batch.records[0].clone();
            }
        };
        let record = delivered.record.expect("a record");
        assert_eq!(decoded_json(&record), json!({"id": "b", "amount": "1500"}));
        tx.send(proto::ConsumeRequest {
            request: Some(consume_request::Request::Ack(proto::AckRequest {
                ack_ids: vec![delivered.ack_id],
            })),
        })
        .await
        .expect("ack sent");
        let mut admin = AdminServiceClient::new(server.channel().await);
        eventually(
            Duration::from_secs(30),
            "the group committed past all three",
            async || {
                let described = admin
                    .describe_group(proto::DescribeGroupRequest {
                        group: group.clone(),
                    })
                    .await
                    .map_err(|e| format!("{e:?}"))?
                    .into_inner()
                    .group
                    .ok_or("no group")?;
                match described
                    .partitions
                    .first()
                    .and_then(|p| p.committed_offset)
                {
                    Some(3) => Ok(()),
                    other => Err(format!("committed {other:?}")),
                }
            },
        )
        .await;
        drop(tx);
    })
    .await;
}

/// Filters over key, headers and decoded fields send only what matches; in a group the
/// records a filter left out are committed past, so the group's next stream does not see
/// them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_records_and_groups_move_past_the_rest() {
    on_each_broker_with(with_schemas, async |server| {
        let payments = server.topic_named("payments", 1).await;
        let mut client = server.client().await;
        let values = [
            ("alice", "eu", 500),
            ("bob", "us", 1500),
            ("carol", "eu", 2500),
            ("dave", "us", 700),
        ];
        for (key, region, amount) in values {
            let mut request =
                publish_json(&payments, key, json!({"amount": amount, "currency": "EUR"}));
            request.headers = vec![proto::Header {
                key: "region".into(),
                value: Bytes::from(region),
            }];
            client.publish(request).await.expect("published");
        }
        let keys = |records: &[proto::Record]| -> Vec<String> {
            records
                .iter()
                .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into())
                .collect()
        };
        let large = read(&server, &payments, None, "value.amount > 1000", false, 2).await;
        assert_eq!(keys(&large), ["bob", "carol"]);
        let eu = read(&server, &payments, None, "headers.region == 'eu'", false, 2).await;
        assert_eq!(keys(&eu), ["alice", "carol"]);
        let both = read(
            &server,
            &payments,
            None,
            "headers.region == 'eu' && value.amount > 1000 && key.startsWith('c')",
            true,
            1,
        )
        .await;
        assert_eq!(keys(&both), ["carol"]);
        assert_eq!(decoded_json(&both[0])["amount"], json!(2500.0));

        // In a group: the filter's stream gets bob (alice is passed over), and the next
        // stream of the group starts after bob — alice is not delivered again.
        let group = streamgate_testkit::random_name("g");
        let filtered = read(
            &server,
            &payments,
            Some(&group),
            "value.amount > 1000",
            false,
            1,
        )
        .await;
        assert_eq!(keys(&filtered), ["bob"]);
        let next = read(&server, &payments, Some(&group), "", false, 1).await;
        assert_eq!(keys(&next), ["carol"]);

        // A stream whose filter matches nothing still moves the group past what it read:
        // once its commit covers dave, the group's next stream starts at the next record.
        let group = streamgate_testkit::random_name("g");
        let mut request = subscribe_request(
            &payments,
            Some(&group),
            Some(start_position::Position::Earliest(true)),
        );
        request.filter = "key == 'nobody'".into();
        let mut silent = client
            .subscribe(request)
            .await
            .expect("subscribed")
            .into_inner();
        let mut admin = AdminServiceClient::new(server.channel().await);
        let committed = async || {
            let group = admin
                .describe_group(proto::DescribeGroupRequest {
                    group: group.clone(),
                })
                .await
                .map_err(|e| format!("{e:?}"))?
                .into_inner()
                .group
                .ok_or("no group")?;
            match group.partitions.first().and_then(|p| p.committed_offset) {
                Some(4) => Ok(()),
                other => Err(format!("committed {other:?}")),
            }
        };
        eventually(
            Duration::from_secs(30),
            "the group committed past dave",
            committed,
        )
        .await;
        // Nothing was sent on the filtered stream but its assignment.
        let first = next_message(&mut silent, Duration::from_secs(30)).await;
        assert!(records_of(first).is_empty());
        drop(silent);
        let mut erin = publish_json(&payments, "erin", json!({"amount": 1, "currency": "EUR"}));
        erin.headers.clear();
        client.publish(erin).await.expect("published");
        let next = read(&server, &payments, Some(&group), "", false, 1).await;
        assert_eq!(keys(&next), ["erin"]);
    })
    .await;
}

/// A filter with a syntax error, an unknown name or over the size limit is refused before
/// the stream reads anything, saying where and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_refused_with_their_position() {
    on_each_broker_with(with_schemas, async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        for (filter, expected) in [
            ("value.amount > ", "1:"),
            ("vaule.amount > 1", "vaule"),
            (&"x".repeat(5000)[..], "--max-filter-bytes"),
        ] {
            let mut request = subscribe_request(&topic, None, None);
            request.filter = filter.to_owned();
            let status = within(
                Duration::from_secs(30),
                "subscribe",
                client.subscribe(request),
            )
            .await
            .expect_err("the filter is refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().starts_with("filter"), "{status:?}");
            assert!(
                status.message().contains(expected),
                "{filter:.40}: {status:?}"
            );
        }
    })
    .await;
}

/// `--schemas` is checked at start (a file that does not load stops the server, naming the
/// flag) and re-read on SIGHUP: a topic it no longer types takes any value afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_file_is_checked_at_start_and_reloaded_on_sighup() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("schemas.toml");
    std::fs::write(&file, "[[topic]]\nname = \"orders\"\nprotobuf = { descriptor_set = \"missing.binpb\", message = \"shop.v1.Order\" }\n")
        .expect("written");
    let path = file.to_str().expect("a UTF-8 path");
    let stderr = crate::support::refused_start(&["--schemas", path], &[]).await;
    assert!(
        stderr.contains("--schemas") && stderr.contains("missing.binpb"),
        "{stderr}"
    );

    let typed = |topic: &str| {
        format!(
            "[[topic]]\nname = \"{topic}\"\njson_schema = {:?}\n",
            fixtures().join("payment.schema.json")
        )
    };
    std::fs::write(&file, typed("orders")).expect("written");
    let server = crate::process::ServerProcess::start(&[
        "--schemas",
        path,
        "--auto-create-topics",
        "--supplier-stopped",
    ])
    .await;
    let mut client = proto::event_gateway_client::EventGatewayClient::connect(server.url.clone())
        .await
        .expect("connected");
    let unpaid = || publish_raw("orders", br#"{"note": "no amount"}"#);
    let refused = client.publish(unpaid()).await.expect_err("typed");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    std::fs::write(&file, typed("payments")).expect("rewritten");
    server.signal("HUP").await;
    server
        .wait_for_line(&["schema file reloaded"], Duration::from_secs(30))
        .await
        .expect("the reload is logged");
    client
        .publish(unpaid())
        .await
        .expect("orders is untyped after the reload");
    server.terminate().await;
}
