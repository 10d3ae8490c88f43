//! The stats hub under attack through R4, a topic anyone can write to: a burst of junk page
//! names does not freeze the page list (pages leave with the retained history), and however
//! many pages there are, a WatchPageStats message stays under gRPC's default 4 MiB limit
//! with the smallest pages folded into "(other)".

use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use streamgate::proto::{PageStats, WatchPageStatsRequest};
use streamgate_server::Settings;
use streamgate_server::settings::WindowSpec;
use streamgate_server::testing::{Producer, ProducerSettings, StatsRecord};
use tokio::time::Instant;

use crate::support::{
    TestServer, eventually, on_each_broker_with, random_name, topic_name, within,
};

const WINDOW: i64 = 5_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn tile(ts: i64) -> i64 {
    ts.div_euclid(WINDOW) * WINDOW
}

/// Writes R4-shaped records straight to `topic`, as any producer could, many at a time.
async fn write_r4(server: &TestServer, topic: &str, records: Vec<StatsRecord>) {
    let producer = Producer::create(
        &server.kafka,
        &ProducerSettings {
            max_message_bytes: 1024 * 1024,
            linger: Duration::from_millis(5),
            queue_kbytes: 64 * 1024,
            auto_create_topics: false,
        },
    )
    .expect("producer");
    for chunk in records.chunks(2_000) {
        let sends = chunk.iter().map(|record| {
            let (key, value, producer) = (record.key(), record.to_json(), producer.clone());
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(key.as_bytes())
                            .payload(value.as_slice()),
                        Instant::now() + Duration::from_secs(60),
                    )
                    .await
                    .expect("R4 record written");
            }
        });
        within(
            Duration::from_secs(120),
            "R4 records written",
            futures::future::join_all(sends),
        )
        .await;
    }
}

/// The settings of a server whose hub reads `stats` (and nothing else runs): its own
/// supplier topic and analytics group, the supplier stopped, a 200 ms tick, 5 s windows and
/// 8 partitions.
fn hub_settings(stats: &str, supplier: &str, group: &str) -> impl Fn(&mut Settings) + use<> {
    let (stats, supplier, group) = (topic_name(stats), topic_name(supplier), group.to_owned());
    move |s| {
        s.topics.stats = stats.clone();
        s.supplier.settings.topic = supplier.clone();
        s.analytics.group = group.clone();
        s.supplier.running = false;
        s.analytics.tick = Duration::from_millis(200);
        s.analytics.spec =
            WindowSpec::tumbling(WINDOW, s.analytics.spec.grace_ms()).expect("a 5 s window");
        s.topics.partitions = 8;
    }
}

async fn watch(server: &TestServer) -> tonic::Streaming<PageStats> {
    server
        .client()
        .await
        .watch_page_stats(WatchPageStatsRequest::default())
        .await
        .expect("watch")
        .into_inner()
}

async fn next_stats(stream: &mut tonic::Streaming<PageStats>) -> PageStats {
    within(
        Duration::from_secs(30),
        "the next PageStats message",
        stream.next(),
    )
    .await
    .expect("stream open")
    .expect("a message within the client's default 4 MiB limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_junk_page_names_does_not_freeze_the_page_list() {
    let (stats, supplier, group) = (
        random_name("sa-r4"),
        random_name("sa-r2"),
        random_name("sa-g"),
    );
    // The shortest retention allowed: one window.
    let hub = hub_settings(&stats, &supplier, &group);
    let configure = |s: &mut Settings| {
        hub(s);
        s.analytics.retention = Duration::from_secs(5);
    };
    on_each_broker_with(configure, |server| {
        let stats = stats.clone();
        async move {
            let mut stream = watch(&server).await;
            // 20 000 junk names in a window a minute ago (more than the old cap of 10 000).
            let old = tile(now_ms()) - 60_000;
            let junk = (0..20_000)
                .map(|i| {
                    StatsRecord::new(format!("junk-{i}"), old, old + WINDOW, 0, i + 1, 1, true)
                })
                .collect();
            write_r4(&server, &stats, junk).await;
            eventually(
                Duration::from_secs(60),
                "the junk shows in WatchPageStats",
                async || {
                    let message = next_stats(&mut stream).await;
                    if message.pages.len() >= 20_000 {
                        Ok(())
                    } else {
                        Err(message.pages.len())
                    }
                },
            )
            .await;
            // Then a new page, now: it appears, and the junk (outside the retention) goes.
            let here = tile(now_ms());
            let fresh = StatsRecord::new("fresh-page".into(), here, here + WINDOW, 0, 1, 3, false);
            write_r4(&server, &stats, vec![fresh]).await;
            eventually(
                Duration::from_secs(60),
                "the new page appears and the junk is forgotten",
                async || {
                    let message = next_stats(&mut stream).await;
                    let pages: Vec<&str> = message.pages.iter().map(|p| p.page.as_str()).collect();
                    if pages == ["fresh-page"] && message.pages[0].count == 3 {
                        Ok(())
                    } else {
                        Err(format!(
                            "{} pages, fresh-page: {:?}",
                            pages.len(),
                            message.pages.iter().find(|p| p.page == "fresh-page")
                        ))
                    }
                },
            )
            .await;
            server.stop().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_many_pages_stays_under_4_mib_and_reports_the_folded_pages() {
    let (stats, supplier, group) = (
        random_name("sb-r4"),
        random_name("sb-r2"),
        random_name("sb-g"),
    );
    on_each_broker_with(hub_settings(&stats, &supplier, &group), |server| {
        let stats = stats.clone();
        async move {
            let mut stream = watch(&server).await;
            // 1 000 pages of 4 000-byte names: about 4 MB of entries, over the 3.5 MiB budget.
            let here = tile(now_ms());
            let pages = 1_000;
            let records = (0..pages)
                .map(|i| {
                    let name = format!("{i:05}-{}", "x".repeat(4_000));
                    StatsRecord::new(name, here, here + WINDOW, 0, i + 1, i as u64 + 1, false)
                })
                .collect();
            write_r4(&server, &stats, records).await;
            // Nothing is lost in the fold: once every count is in, the entries sum to all.
            let total: u64 = (1..=pages as u64).sum();
            let message = eventually(
                Duration::from_secs(60),
                "a message with every page counted or folded",
                async || {
                    let message = next_stats(&mut stream).await;
                    let listed = message.pages.len() as u64 - u64::from(message.folded_pages > 0);
                    let sum: u64 = message.pages.iter().map(|p| p.count).sum();
                    if listed + message.folded_pages == pages as u64 && sum == total {
                        Ok(message)
                    } else {
                        Err((message.pages.len(), message.folded_pages, sum))
                    }
                },
            )
            .await;
            assert!(
                message.encoded_len() < 4 * 1024 * 1024,
                "{} bytes",
                message.encoded_len()
            );
            assert!(message.folded_pages > 0, "some pages are folded");
            let (other, kept) = message.pages.split_last().expect("entries");
            assert_eq!(other.page, "(other)");
            // The smallest counts are the folded ones.
            let smallest_kept = kept.iter().map(|p| p.count).min().expect("some kept");
            assert!(
                smallest_kept > message.folded_pages,
                "the largest are kept: smallest kept {smallest_kept}, {} folded",
                message.folded_pages
            );
            server.stop().await;
        }
    })
    .await;
}
