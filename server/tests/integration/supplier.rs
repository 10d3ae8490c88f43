//! The supplier and ControlSupplier: the seed's distribution, settings that take effect while
//! it runs, stop that stops, and invalid requests that change nothing.

use std::collections::HashMap;
use std::time::Duration;

use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{
    self, ControlSupplierRequest, SupplierAction, SupplierSettingsUpdate, start_position,
};
use tonic::transport::Channel;

use crate::support::{TestServer, collect_all, on_each_broker, subscribe_request};

async fn control(
    client: &mut EventGatewayClient<Channel>,
    action: SupplierAction,
    settings: Option<SupplierSettingsUpdate>,
) -> Result<proto::SupplierStatus, tonic::Status> {
    client
        .control_supplier(ControlSupplierRequest {
            action: action as i32,
            settings,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn pages(values: &[&str]) -> Option<proto::StringList> {
    Some(proto::StringList {
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    })
}

/// Reads `count` records of `topic` from `position`.
async fn read(
    server: &TestServer,
    topic: &str,
    position: start_position::Position,
    count: u64,
) -> Vec<proto::Record> {
    let mut client = server.client().await;
    let mut request = subscribe_request(topic, None, Some(position));
    request.max_records = Some(count);
    let (_, records) = collect_all(
        client
            .subscribe(request)
            .await
            .expect("subscribe")
            .into_inner(),
    )
    .await;
    assert_eq!(records.len() as u64, count);
    records
}

fn millis(record: &proto::Record) -> i64 {
    let ts = record.timestamp.expect("timestamp");
    ts.seconds * 1000 + i64::from(ts.nanos / 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supplies_the_seed_distribution() {
    on_each_broker(|server| async move {
        // One partition: the first 2000 records read are then the first 2000 written. With
        // one partition per page, the reader would favour whichever it drains first.
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let update = SupplierSettingsUpdate {
            rate_per_second: Some(2000.0),
            topic: Some(topic.clone()),
            ..Default::default()
        };
        control(&mut client, SupplierAction::Start, Some(update))
            .await
            .expect("start");
        let records = read(
            &server,
            &topic,
            start_position::Position::Earliest(true),
            2000,
        )
        .await;
        let status = control(&mut client, SupplierAction::Stop, None)
            .await
            .expect("stop");
        assert!(status.events_sent >= 2000, "{status:?}");

        let mut counts: HashMap<String, usize> = HashMap::new();
        for record in &records {
            let event = record
                .page_event
                .as_ref()
                .expect("every value is a PageEvent");
            assert_eq!(
                record.key.as_deref(),
                Some(event.name.as_bytes()),
                "keyed by page name"
            );
            assert!(
                (0..=9000).contains(&event.duration_ms.unwrap_or(-1)),
                "{event:?}"
            );
            let json: serde_json::Value =
                serde_json::from_slice(record.value.as_deref().expect("value")).expect("JSON");
            assert!(
                json["date"].as_str().is_some_and(|d| d.ends_with("+00:00")),
                "{json}"
            );
            *counts.entry(event.name.clone()).or_default() += 1;
            *counts
                .entry(event.user.clone().unwrap_or_default())
                .or_default() += 1;
        }
        for (name, count) in &counts {
            let share = *count as f64 / records.len() as f64;
            assert!(
                (0.45..=0.55).contains(&share),
                "{name}: {share:.3} of {}: {counts:?}",
                records.len()
            );
        }
        assert_eq!(counts.len(), 4, "P1, P2, U1, U2: {counts:?}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_changes_pages_and_rate_stops_and_resumes() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let admin_topic = topic.clone();
        let mut client = server.client().await;
        let update = SupplierSettingsUpdate {
            rate_per_second: Some(20.0),
            pages: pages(&["P3", "P4"]),
            topic: Some(topic.clone()),
            ..Default::default()
        };
        control(&mut client, SupplierAction::Start, Some(update))
            .await
            .expect("start");
        let slow = read(
            &server,
            &topic,
            start_position::Position::Earliest(true),
            40,
        )
        .await;
        let names: std::collections::BTreeSet<String> = slow
            .iter()
            .map(|r| r.page_event.as_ref().expect("event").name.clone())
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["P3", "P4"],
            "only the new pages appear"
        );

        let changed_at = chrono::Utc::now().timestamp_millis() + 300;
        control(
            &mut client,
            SupplierAction::Unspecified,
            Some(SupplierSettingsUpdate {
                rate_per_second: Some(100.0),
                ..Default::default()
            }),
        )
        .await
        .expect("faster");
        let at = start_position::Position::Timestamp(prost_types::Timestamp {
            seconds: changed_at / 1000,
            nanos: (changed_at % 1000) as i32 * 1_000_000,
        });
        let fast = read(&server, &topic, at, 150).await;
        let rate = |records: &[proto::Record]| {
            let span = (millis(&records[records.len() - 1]) - millis(&records[0])) as f64 / 1000.0;
            (records.len() - 1) as f64 / span
        };
        let (slow_rate, fast_rate) = (rate(&slow[5..]), rate(&fast));
        assert!(
            (16.0..=24.0).contains(&slow_rate),
            "20/s seen as {slow_rate:.1}/s"
        );
        assert!(
            (80.0..=120.0).contains(&fast_rate),
            "100/s seen as {fast_rate:.1}/s"
        );

        let stopped = control(&mut client, SupplierAction::Stop, None)
            .await
            .expect("stop");
        assert!(!stopped.running);
        tokio::time::sleep(Duration::from_millis(300)).await; // acknowledgements in flight land
        let end_offset = |client: EventGatewayClient<Channel>| {
            let topic = admin_topic.clone();
            async move {
                let mut client = client;
                let topics = client
                    .list_topics(proto::ListTopicsRequest::default())
                    .await
                    .expect("list")
                    .into_inner()
                    .topics;
                topics
                    .into_iter()
                    .find(|t| t.name == topic)
                    .map(|t| t.partitions[0].high_watermark)
                    .expect("topic listed")
            }
        };
        let before = end_offset(client.clone()).await;
        tokio::time::sleep(Duration::from_millis(500)).await; // fifty intervals at 100/s
        assert_eq!(
            end_offset(client.clone()).await,
            before,
            "stop really stops"
        );

        let started = control(&mut client, SupplierAction::Start, None)
            .await
            .expect("start again");
        assert!(started.running);
        let mut resumed = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if end_offset(client.clone()).await > before {
                resumed = true;
                break;
            }
        }
        assert!(resumed, "start resumes");
        control(&mut client, SupplierAction::Stop, None)
            .await
            .expect("stop");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_control_requests_change_nothing() {
    on_each_broker(|server| async move {
        let mut client = server.client().await;
        let before = control(&mut client, SupplierAction::Unspecified, None)
            .await
            .expect("status")
            .settings;
        let cases: Vec<(SupplierSettingsUpdate, &str)> = vec![
            (
                SupplierSettingsUpdate {
                    pages: pages(&[]),
                    ..Default::default()
                },
                "pages",
            ),
            (
                SupplierSettingsUpdate {
                    rate_per_second: Some(0.0),
                    ..Default::default()
                },
                "rate",
            ),
            (
                SupplierSettingsUpdate {
                    rate_per_second: Some(1e7),
                    ..Default::default()
                },
                "maximum",
            ),
            (
                SupplierSettingsUpdate {
                    topic: Some("no good".into()),
                    ..Default::default()
                },
                "topic",
            ),
            (
                SupplierSettingsUpdate {
                    min_duration_ms: Some(10),
                    max_duration_ms: Some(5),
                    ..Default::default()
                },
                "minimum",
            ),
            // A valid part next to an invalid one: the valid part is not applied either.
            (
                SupplierSettingsUpdate {
                    users: pages(&["X"]),
                    pages: pages(&[]),
                    ..Default::default()
                },
                "pages",
            ),
        ];
        for (update, word) in cases {
            let status = control(&mut client, SupplierAction::Stop, Some(update))
                .await
                .expect_err(word);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(word), "{word}: {status:?}");
        }
        let unknown = client
            .control_supplier(ControlSupplierRequest {
                action: 42,
                settings: None,
            })
            .await
            .expect_err("unknown action");
        assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
        assert!(unknown.message().contains("action"), "{unknown:?}");

        let after = control(&mut client, SupplierAction::Unspecified, None)
            .await
            .expect("status");
        assert_eq!(after.settings, before, "settings unchanged");
        assert!(after.running, "the failed STOP requests did not stop it");
        server.stop().await;
    })
    .await;
}
