//! Hostile requests: each limit answers with a typed error that names its flag, and the
//! server goes on serving — tiny, NaN and negative supplier rates, far-future timestamps,
//! records of 100 000 headers, a Subscribe of 200 000 topics, more watchers and
//! PublishStreams than allowed, and a supplier task that panics.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use streamgate::proto::{
    self, ControlSupplierRequest, SupplierAction, SupplierSettingsUpdate, WatchPageStatsRequest,
    publish_request,
};
use streamgate_server::Settings;
use streamgate_server::settings::SupplierSettings;
use streamgate_server::testing::{Producer, ProducerSettings, Supplier};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

use crate::support::{
    eventually, next_message, on_each_broker, on_each_broker_with, read_all, subscribe_request,
    within,
};

fn value(topic: &str) -> proto::PublishRequest {
    proto::PublishRequest {
        topic: topic.to_owned(),
        payload: Some(publish_request::Payload::Value(Bytes::from_static(b"v"))),
        ..Default::default()
    }
}

fn rate(rate_per_second: f64) -> ControlSupplierRequest {
    ControlSupplierRequest {
        action: SupplierAction::Unspecified as i32,
        settings: Some(SupplierSettingsUpdate {
            rate_per_second: Some(rate_per_second),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_nan_and_negative_rates_are_refused_and_the_supplier_stays_controllable() {
    let stopped = |s: &mut Settings| s.supplier.running = false;
    on_each_broker_with(stopped, |server| async move {
        let mut client = server.client().await;
        for bad in [1e-300, f64::NAN, -1.0, 0.0, f64::INFINITY, 1e9] {
            let status = client
                .control_supplier(rate(bad))
                .await
                .expect_err("refused");
            assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
            assert!(status.message().contains("unchanged"), "{status:?}");
        }
        // Still answering, with the settings it had.
        let status = client
            .control_supplier(rate(25.0))
            .await
            .expect("a valid rate is taken")
            .into_inner();
        let settings = status.settings.expect("settings");
        assert_eq!(settings.rate_per_second, 25.0);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_more_than_an_hour_ahead_are_refused_naming_the_flag() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let now = streamgate::time::now_millis();
        let mut request = value(&topic);
        request.timestamp = Some(streamgate::time::from_millis(4_102_444_800_000)); // 2100
        let status = client.publish(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("--max-timestamp-ahead"),
            "{status:?}"
        );
        // Fifty minutes ahead is within the limit.
        let mut request = value(&topic);
        request.timestamp = Some(streamgate::time::from_millis(now + 50 * 60 * 1000));
        client.publish(request).await.expect("within the limit");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_100_000_headers_is_refused_naming_the_flag() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        let mut request = value(&topic);
        request.headers = vec![proto::Header::default(); 100_000];
        let status = client.publish(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("--max-headers"), "{status:?}");
        // 256 empty headers are fine; their framing counts in the size limit.
        let mut request = value(&topic);
        request.headers = vec![proto::Header::default(); 256];
        client.publish(request).await.expect("within the limit");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_of_200_000_topics_is_refused_at_once() {
    let limit = |s: &mut Settings| s.limits.max_message_bytes = 8_388_608;
    on_each_broker_with(limit, |server| async move {
        let mut client = server.client().await;
        let request = proto::SubscribeRequest {
            topics: (0..200_000).map(|i| format!("t{i}")).collect(),
            ..Default::default()
        };
        let status = within(
            Duration::from_secs(30),
            "the refusal",
            client.subscribe(request),
        )
        .await
        .expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("--max-subscribe-topics"),
            "{status:?}"
        );
        // The server goes on serving.
        client
            .list_topics(proto::ListTopicsRequest::default())
            .await
            .expect("still serving");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_never_read_beyond_the_cap_are_refused_naming_the_flag() {
    let cap = |s: &mut Settings| s.limits.max_watchers = 1000;
    on_each_broker_with(cap, |server| async move {
        // 2 000 watchers over several connections: one HTTP/2 connection carries at most
        // 256 streams.
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..10 {
            let client = server.client().await;
            for _ in 0..200 {
                match client
                    .clone()
                    .watch_page_stats(WatchPageStatsRequest::default())
                    .await
                {
                    // Never read again.
                    Ok(stream) => held.push(stream.into_inner()),
                    Err(status) => {
                        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                        assert!(status.message().contains("--max-watchers"), "{status:?}");
                        refused += 1;
                    }
                }
            }
        }
        assert_eq!((held.len(), refused), (1000, 1000));
        // Watchers that go away give their slots back.
        drop(held);
        let mut client = server.client().await;
        eventually(
            Duration::from_secs(30),
            "a watcher is admitted again",
            async || {
                let mut stream = client
                    .watch_page_stats(WatchPageStatsRequest::default())
                    .await
                    .ok()?
                    .into_inner();
                within(Duration::from_secs(10), "a first message", stream.next())
                    .await
                    .and_then(Result::ok)
            },
        )
        .await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_streams_beyond_the_cap_are_refused_naming_the_flag() {
    let cap = |s: &mut Settings| s.limits.max_publish_streams = 2;
    on_each_broker_with(cap, |server| async move {
        let topic = server.topic(1).await;
        let client = server.client().await;
        let mut open = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(value(&topic)).await.expect("queued");
            let mut results = client
                .clone()
                .publish_stream(ReceiverStream::new(rx))
                .await
                .expect("admitted")
                .into_inner();
            within(Duration::from_secs(30), "the first ack", results.next())
                .await
                .expect("an ack")
                .expect("ok");
            open.push((tx, results));
        }
        let (_tx, rx) = tokio::sync::mpsc::channel::<proto::PublishRequest>(1);
        let status = client
            .clone()
            .publish_stream(ReceiverStream::new(rx))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("--max-publish-streams"),
            "{status:?}"
        );
        drop(open);
        server.stop().await;
    })
    .await;
}

/// Records of many empty headers and a value larger than the stream's whole byte budget,
/// written straight to the broker (Publish refuses them): Subscribe delivers each whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_many_headers_are_delivered_within_the_byte_budget() {
    on_each_broker_with(
        |s| {
            s.limits.subscribe_buffer_bytes = 1_048_576;
            s.limits.subscribe_buffer = 4;
        },
        |server| async move {
            let topic = server.topic(1).await;
            let producer: rdkafka::producer::FutureProducer = server
                .kafka
                .client_config()
                .set("message.max.bytes", "4000000")
                .create()
                .expect("producer");
            // Three: the embedded broker keeps about 5 MiB per partition.
            let value = vec![b'v'; 1_100_000];
            for i in 0..3 {
                let mut headers = rdkafka::message::OwnedHeaders::new_with_capacity(20_000);
                for _ in 0..20_000 {
                    headers = headers.insert(rdkafka::message::Header {
                        key: "",
                        value: Some(&b""[..]),
                    });
                }
                let key = format!("k{i}");
                producer
                    .send(
                        rdkafka::producer::FutureRecord::to(&topic)
                            .key(key.as_bytes())
                            .payload(&value)
                            .headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("written");
            }
            let records = read_all(&server, &topic, 3).await;
            assert_eq!(records.len(), 3);
            assert!(records.iter().all(|r| r.headers.len() == 20_000));
            assert!(
                records
                    .iter()
                    .all(|r| r.value.as_ref().is_some_and(|v| v.len() == value.len()))
            );
            server.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_supplier_is_restarted_with_its_settings() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        let producer = Producer::create(
            &server.kafka,
            &ProducerSettings {
                max_message_bytes: 1024 * 1024,
                linger: Duration::from_millis(5),
                queue_kbytes: 1024,
                auto_create_topics: false,
            },
        )
        .expect("producer");
        let settings = SupplierSettings {
            rate_per_second: 50.0,
            pages: vec!["P1".into()],
            users: vec!["U1".into()],
            min_duration_ms: 0,
            max_duration_ms: 10,
            topic: streamgate::topic::TopicName::new(topic.clone()).expect("valid"),
        };
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let supplier = Supplier::spawn(
            producer,
            settings,
            true,
            1000.0,
            Duration::from_secs(10),
            &tasks,
            shutdown.clone(),
        );
        let status = |supplier: Supplier| async move {
            supplier
                .control(SupplierAction::Unspecified, None)
                .await
                .ok()
        };
        eventually(Duration::from_secs(30), "events sent", async || {
            status(supplier.clone()).await.filter(|s| s.events_sent > 0)
        })
        .await;
        supplier.inject_panic().await;
        let before = eventually(
            Duration::from_secs(30),
            "the supplier is back",
            async || {
                (supplier.restarts() == 1).then_some(())?;
                status(supplier.clone()).await
            },
        )
        .await;
        assert_eq!(before.settings.expect("settings").rate_per_second, 50.0);
        eventually(Duration::from_secs(30), "it sends again", async || {
            status(supplier.clone())
                .await
                .filter(|s| s.events_sent > before.events_sent)
        })
        .await;
        // The subscription still sees the events it writes.
        let mut client = server.client().await;
        let mut stream = client
            .subscribe(subscribe_request(&topic, None, None))
            .await
            .expect("subscribe")
            .into_inner();
        next_message(&mut stream, Duration::from_secs(30)).await;
        shutdown.cancel();
        tasks.close();
        within(Duration::from_secs(30), "the supplier stops", tasks.wait()).await;
        server.stop().await;
    })
    .await;
}
