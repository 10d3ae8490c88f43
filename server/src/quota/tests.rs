//! Unit tests of the quotas.

use super::*;
use crate::auth::{Credential, Permission};

fn settings() -> QuotaSettings {
    QuotaSettings {
        publish_records: 10.0,
        publish_bytes: 0.0,
        read_records: 0.0,
        read_bytes: 1000.0,
        burst: Duration::from_secs(1),
    }
}

fn principal(name: &str) -> Principal {
    Principal::new(
        name,
        Arc::from(vec![Permission::Admin]),
        Credential::Token,
        None,
    )
}

#[tokio::test(start_paused = true)]
async fn a_principal_over_its_publish_quota_is_refused_and_others_are_not() {
    let quotas = Quotas::new(settings());
    let (greedy, other) = (principal("greedy"), principal("other"));
    for _ in 0..10 {
        quotas.publish(&greedy, 10).expect("the burst");
    }
    let over = quotas.publish(&greedy, 10).expect_err("over the quota");
    assert_eq!(over.retry_after, Duration::from_millis(100));
    let message = over.to_string();
    assert!(
        message.contains("\"greedy\"") && message.contains("--quota-publish-records"),
        "{message}"
    );
    quotas.publish(&other, 10).expect("its own bucket");
    tokio::time::advance(Duration::from_millis(100)).await;
    quotas.publish(&greedy, 10).expect("after the wait");
    let counts: HashMap<_, _> = quotas.counts().into_iter().collect();
    assert_eq!(counts[&Arc::from("greedy")].publish_refused, 1);
}

#[tokio::test(start_paused = true)]
async fn reads_over_the_quota_wait_for_it() {
    let quotas = Quotas::new(settings());
    let reader = principal("reader");
    assert_eq!(quotas.read(&reader, 5, 1000), Duration::ZERO);
    assert_eq!(quotas.read(&reader, 5, 500), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn an_auth_file_entry_overrides_the_flags() {
    let quotas = Quotas::new(settings());
    let free = principal("free").with_quotas(QuotaOverrides {
        publish_records: Some(0.0),
        ..Default::default()
    });
    for _ in 0..100 {
        quotas.publish(&free, 10).expect("no quota for it");
    }
}
