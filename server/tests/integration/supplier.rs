//! The supplier and ControlSupplier: the seed's distribution, settings that take effect while
//! it runs, stop that stops, and invalid requests that change nothing.

use std::collections::HashMap;
use std::time::Duration;

use streamgate::proto::event_gateway_client::EventGatewayClient;
use streamgate::proto::{
    self, ControlSupplierRequest, SupplierAction, SupplierSettingsUpdate, start_position,
};
use tonic::transport::Channel;

use crate::support::{
    TestServer, collect_all, eventually, on_each_broker, settled, subscribe_request,
};

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

/// How densely the supplier wrote `records`: records per second of *record time*, counted
/// over whole supplier ticks. No wall clock of the test is involved, and a loaded machine
/// does not change the result:
///
/// - the supplier stamps each event with the time of the tick that sends it, and each tick
///   sends what the rate owes for the time since the previous tick (a late tick sends more,
///   all stamped alike). So the records stamped in `(t_first, t_end]` are what the rate owed
///   for `t_end - t_first`, whatever the scheduling, to within a record or two;
/// - the records stamped `t_first` are left out (they pay for time before `t_first`), and so
///   are those stamped with the last timestamp (the read's count may cut that tick short).
fn density(records: &[proto::Record]) -> f64 {
    let stamps: Vec<i64> = records.iter().map(millis).collect();
    let first = stamps.iter().copied().min().expect("records");
    let last = stamps.iter().copied().max().expect("records");
    let end = stamps
        .iter()
        .copied()
        .filter(|t| *t < last)
        .max()
        .unwrap_or(first);
    assert!(end > first, "too few supplier ticks to compare: {stamps:?}");
    let counted = stamps
        .iter()
        .filter(|t| (first + 1..=end).contains(*t))
        .count();
    counted as f64 * 1000.0 / (end - first) as f64
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

        let faster = control(
            &mut client,
            SupplierAction::Unspecified,
            Some(SupplierSettingsUpdate {
                rate_per_second: Some(100.0),
                ..Default::default()
            }),
        )
        .await
        .expect("faster");
        assert_eq!(
            faster.settings.as_ref().map(|s| s.rate_per_second),
            Some(100.0),
            "the status reports the new rate"
        );
        // The supplier applied the rate before it answered, and stamps each event when it
        // sends it: every record stamped from now on was sent at the new rate.
        let changed_at = chrono::Utc::now().timestamp_millis();
        let at = start_position::Position::Timestamp(prost_types::Timestamp {
            seconds: changed_at / 1000,
            nanos: (changed_at % 1000) as i32 * 1_000_000,
        });
        let fast = read(&server, &topic, at, 150).await;
        // The rate change takes effect: five times the rate writes about five times as many
        // records per second of record time (see `density`). The bound is half of that, and
        // an ignored change gives 1x. Rates are not checked against the clock: nothing here
        // depends on how fast the machine is.
        let (slow_density, fast_density) = (density(&slow), density(&fast));
        assert!(
            fast_density >= 2.5 * slow_density,
            "20/s then 100/s: {slow_density:.1} then {fast_density:.1} records per second of record time"
        );

        let stopped = control(&mut client, SupplierAction::Stop, None)
            .await
            .expect("stop");
        assert!(!stopped.running);
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
        // Sends in flight at the stop are still acknowledged: wait until the supplier's
        // counts and the topic's end stop moving.
        let (_, _, before) = settled(
            Duration::from_secs(30),
            Duration::from_millis(300),
            "the supplier's sends in flight land",
            async || {
                let status = control(&mut client, SupplierAction::Unspecified, None)
                    .await
                    .expect("status");
                let end = end_offset(client.clone()).await;
                (status.events_sent, status.errors, end)
            },
        )
        .await;
        // The scenario, not a synchronisation: let fifty intervals at 100/s pass, in which a
        // supplier that had not stopped would write.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            end_offset(client.clone()).await,
            before,
            "stop really stops"
        );

        let started = control(&mut client, SupplierAction::Start, None)
            .await
            .expect("start again");
        assert!(started.running);
        eventually(Duration::from_secs(30), "start resumes", async || {
            let end = end_offset(client.clone()).await;
            if end > before { Ok(()) } else { Err(end) }
        })
        .await;
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
