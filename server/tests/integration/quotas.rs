//! Per-principal rate quotas: a principal over its publish quota is refused with when to
//! retry, in a PublishStream record by record while the stream goes on; another principal
//! is unaffected; a principal over its read quota is slowed, not refused; `/metrics` counts
//! both by principal.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use streamgate::proto::{self, publish_request, publish_result, start_position};
use streamgate_server::Settings;
use streamgate_testkit::AuthFile;
use tonic::Code;

use crate::metrics::value;
use crate::support::{eventually, on_each_broker_with, subscribe_request, within};

fn record(topic: &str, i: usize) -> proto::PublishRequest {
    proto::PublishRequest {
        topic: topic.to_owned(),
        payload: Some(publish_request::Payload::Value(Bytes::from(format!(
            "v{i}"
        )))),
        ..Default::default()
    }
}

async fn scrape(url: &str) -> String {
    reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth(streamgate_testkit::ADMIN_TOKEN)
        .send()
        .await
        .expect("scraped")
        .text()
        .await
        .expect("a page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_publish_quota_is_refused_and_others_are_not() {
    let file = AuthFile::new(&[
        (
            "fast",
            "fast-token",
            &["publish:*", "subscribe:*", "topics"],
        ),
        ("other", "other-token", &["publish:*"]),
    ]);
    let configure = |s: &mut Settings| {
        file.apply(s);
        // Five records a second, bursts of five; the admin harness publishes nothing.
        s.limits.quotas.publish_records = 5.0;
    };
    on_each_broker_with(configure, |server| async move {
        let topic = server.topic(1).await;
        let mut fast = server.client_with_token(Some("fast-token")).await;
        let mut refused = None;
        for i in 0..20 {
            if let Err(status) = fast.publish(record(&topic, i)).await {
                refused = Some(status);
                break;
            }
        }
        let refused = refused.expect("the quota refuses within 20 records");
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused.message().contains("\"fast\"")
                && refused.message().contains("--quota-publish-records"),
            "{refused:?}"
        );
        assert!(
            refused.metadata().get("retry-after-ms").is_some(),
            "{refused:?}"
        );

        // In a stream, the refused records carry the error and the stream goes on.
        let results: Vec<_> = fast
            .publish_stream(futures::stream::iter(
                (0..10).map(|i| record(&topic, i)).collect::<Vec<_>>(),
            ))
            .await
            .expect("the stream opens")
            .into_inner()
            .collect::<Vec<_>>()
            .await;
        assert_eq!(results.len(), 10, "one result per record");
        assert!(results.iter().any(|r| matches!(
            r.as_ref().expect("a result").outcome,
            Some(publish_result::Outcome::Error(ref e)) if e.code == Code::ResourceExhausted as i32
        )));

        let mut other = server.client_with_token(Some("other-token")).await;
        other
            .publish(record(&topic, 0))
            .await
            .expect("its own quota");

        let page = scrape(&server.url()).await;
        assert!(
            value(
                &page,
                "streamgate_quota_publish_refused_total{principal=\"fast\"}"
            ) >= 1.0,
            "{page}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_read_quota_is_slowed_not_refused() {
    let file = AuthFile::new(&[("slow", "slow-token", &["subscribe:*", "topics"])]);
    let configure = |s: &mut Settings| {
        file.apply(s);
        s.limits.quotas.read_records = 100.0;
    };
    on_each_broker_with(configure, |server| async move {
        let topic = server.topic(1).await;
        let mut admin = server.client_with_token(server.admin_token).await;
        let values: Vec<_> = (0..300).map(|i| format!("v{i}")).collect();
        let requests = values
            .iter()
            .enumerate()
            .map(|(i, _)| record(&topic, i))
            .collect::<Vec<_>>();
        let acked = admin
            .publish_stream(futures::stream::iter(requests))
            .await
            .expect("published")
            .into_inner()
            .collect::<Vec<_>>()
            .await;
        assert_eq!(acked.len(), 300);

        let mut slow = server.client_with_token(Some("slow-token")).await;
        let request =
            subscribe_request(&topic, None, Some(start_position::Position::Earliest(true)));
        // Read to a count, not to the end offsets: Tansu's end offset is off after batched
        // writes.
        let mut stream = slow
            .subscribe(request)
            .await
            .expect("subscribed")
            .into_inner();
        let mut records = 0;
        within(Duration::from_secs(60), "every record, slowly", async {
            while records < 300 {
                let message = stream.message().await.expect("not refused");
                let message = message.expect("the stream goes on");
                records += crate::support::records_of(message.message).len();
            }
        })
        .await;
        assert_eq!(records, 300, "slowed, not dropped");
        eventually(
            Duration::from_secs(30),
            "the throttle counted",
            async || {
                let page = scrape(&server.url()).await;
                (value(
                    &page,
                    "streamgate_quota_read_throttled_seconds_total{principal=\"slow\"}",
                ) > 0.0)
                    .then_some(())
            },
        )
        .await;
    })
    .await;
}
