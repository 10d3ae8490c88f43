//! Unit tests of admission.

use std::sync::Arc;

use super::*;
use crate::auth::Permission;

fn limits(n: usize) -> Limits {
    use clap::Parser;
    let config = crate::config::Config::parse_from(["streamgate-server"]);
    let defaults = crate::settings::Settings::resolve(&config).expect("default settings");
    Limits {
        max_subscriptions: n,
        max_publish_streams: n + 1,
        max_watchers: n + 2,
        principal_max_subscriptions: n,
        principal_max_publish_streams: n + 1,
        principal_max_watchers: n + 2,
        admin_reserved_slots: 0,
        ..defaults.limits
    }
}

fn principal(name: &str, grants: Vec<Permission>) -> Principal {
    Principal::new(name, Arc::from(grants), Credential::Token, None)
}

fn reader(name: &str) -> Principal {
    principal(name, vec!["subscribe:*".parse().expect("a permission")])
}

fn admin() -> Principal {
    principal("root", vec![Permission::Admin])
}

#[test]
fn a_kind_is_full_at_its_limit_and_frees_a_slot_when_a_permit_drops() {
    let admission = Admission::new(&limits(2));
    let open = Principal::open();
    let first = admission.admit(Slot::Stream, &open).expect("first slot");
    let _second = admission.admit(Slot::Stream, &open).expect("second slot");
    let full = admission
        .admit(Slot::Stream, &open)
        .expect_err("no third slot");
    assert_eq!(
        full,
        Full::Server {
            slot: Slot::Stream,
            limit: 2
        }
    );
    assert!(full.to_string().contains("--max-subscriptions"), "{full}");
    assert_eq!(admission.in_use(Slot::Stream), 2);
    drop(first);
    assert_eq!(admission.in_use(Slot::Stream), 1);
    admission.admit(Slot::Stream, &open).expect("a slot again");
}

#[test]
fn kinds_do_not_share_slots() {
    let admission = Admission::new(&limits(1));
    let open = Principal::open();
    let _stream = admission.admit(Slot::Stream, &open).expect("stream");
    let held: Vec<_> = (0..2)
        .map(|_| {
            admission
                .admit(Slot::PublishStream, &open)
                .expect("publish stream")
        })
        .collect();
    assert_eq!(held.len(), 2);
    for slot in Slot::ALL {
        let expected = match slot {
            Slot::Stream => 1,
            Slot::PublishStream => 2,
            Slot::Watcher => 0,
        };
        assert_eq!(admission.in_use(slot), expected, "{slot:?}");
    }
    let full = admission
        .admit(Slot::PublishStream, &open)
        .expect_err("publish streams full");
    assert!(full.to_string().contains("--max-publish-streams"), "{full}");
    admission
        .admit(Slot::Watcher, &open)
        .expect("watchers are apart");
}

/// One principal holds its share and no more; another still gets its own; a refusal names
/// the principal and the flag.
#[test]
fn each_principal_holds_at_most_its_share() {
    let admission = Admission::new(&Limits {
        principal_max_subscriptions: 2,
        ..limits(10)
    });
    let (alice, bob) = (reader("alice"), reader("bob"));
    let held: Vec<_> = (0..2)
        .map(|_| {
            admission
                .admit(Slot::Stream, &alice)
                .expect("alice's share")
        })
        .collect();
    let full = admission
        .admit(Slot::Stream, &alice)
        .expect_err("alice is at her share");
    assert!(matches!(full, Full::Principal { limit: 2, .. }), "{full:?}");
    let message = full.to_string();
    assert!(
        message.contains("\"alice\"") && message.contains("--principal-max-subscriptions"),
        "{message}"
    );
    admission
        .admit(Slot::Stream, &bob)
        .expect("bob has his own");
    drop(held);
    admission
        .admit(Slot::Stream, &alice)
        .expect("alice's share is back");
}

/// The read-only principal takes every slot open to it; the admin still gets in.
#[test]
fn the_reserve_keeps_slots_for_admins() {
    let admission = Admission::new(&Limits {
        admin_reserved_slots: 2,
        principal_max_subscriptions: 100,
        ..limits(5)
    });
    let greedy = reader("greedy");
    let held: Vec<_> = (0..3)
        .map(|_| {
            admission
                .admit(Slot::Stream, &greedy)
                .expect("an open slot")
        })
        .collect();
    let full = admission
        .admit(Slot::Stream, &greedy)
        .expect_err("the rest is reserved");
    assert!(
        full.to_string().contains("--admin-reserved-slots"),
        "{full}"
    );
    let root = admin();
    let _first = admission
        .admit(Slot::Stream, &root)
        .expect("reserved for admin");
    let _second = admission
        .admit(Slot::Stream, &root)
        .expect("reserved for admin");
    assert!(matches!(
        admission.admit(Slot::Stream, &root),
        Err(Full::Server { limit: 5, .. })
    ));
    assert_eq!(held.len(), 3);
}

/// An auth-file entry's own limits override the flags, per kind.
#[test]
fn an_auth_file_share_overrides_the_flag() {
    let admission = Admission::new(&limits(10));
    let small = reader("small").with_slot_limits(crate::auth::SlotLimits {
        subscriptions: Some(1),
        ..Default::default()
    });
    let _one = admission.admit(Slot::Stream, &small).expect("its one");
    let full = admission
        .admit(Slot::Stream, &small)
        .expect_err("its own limit");
    assert!(full.to_string().contains("limits.subscriptions"), "{full}");
    admission
        .admit(Slot::Watcher, &small)
        .expect("other kinds keep the flag's share");
}

/// Refusals leave nothing behind: a flood of names that are each refused (a JWT `sub`
/// can be anything) does not grow the table.
#[test]
fn refused_principals_leave_no_entry() {
    let admission = Admission::new(&Limits {
        principal_max_subscriptions: 1,
        ..limits(1)
    });
    let _held = admission
        .admit(Slot::Stream, &reader("first"))
        .expect("the one slot");
    for i in 0..1000 {
        admission
            .admit(Slot::Stream, &reader(&format!("p{i}")))
            .expect_err("full");
    }
    assert_eq!(admission.lock().by_principal.len(), 1);
}
