//! Unit tests of `settings`.

use clap::Parser;

use super::*;
use crate::config::Config;

fn resolve(args: &[&str]) -> Result<Settings, InvalidSetting> {
    let config =
        Config::try_parse_from(std::iter::once("streamgate-server").chain(args.iter().copied()))
            .expect("parses");
    Settings::resolve(&config)
}

fn names(settings: &Settings) -> Vec<String> {
    settings
        .topics_to_create()
        .expect("the dead-letter topics are valid")
        .iter()
        .map(|t| t.to_string())
        .collect()
}

#[test]
fn defaults_are_loopback_and_seed_topics() {
    let settings = resolve(&[]).expect("defaults are valid");
    assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        names(&settings),
        [
            "R1",
            "R2",
            "R3",
            "R4",
            "error.R2.streamgate-transform",
            "error.R2.streamgate-analytics"
        ]
    );
    assert!(settings.transform.run && settings.log_consumer);
    assert!(settings.analytics.worker && settings.supplier.running);
    assert_eq!(settings.analytics.spec.size_ms(), 5_000);
    assert_eq!(settings.http.keepalive, Duration::from_secs(30));
}

#[test]
fn stages_can_be_switched_off_and_moved() {
    let settings = resolve(&[
        "--transform",
        "false",
        "--log-consumer",
        "off",
        "--transform-input",
        "in",
    ])
    .expect("valid");
    assert!(!settings.transform.run && !settings.log_consumer);
    assert_eq!(
        names(&settings),
        [
            "R1",
            "R2",
            "R3",
            "R4",
            "in",
            "error.R2.streamgate-analytics"
        ]
    );
}

#[test]
fn names_the_flag_at_fault() {
    for (args, flag) in [
        (&["--log-topic", "bad topic"][..], "--log-topic"),
        (&["--transform-input", "bad name"][..], "--transform-input"),
        (&["--partitions", "0"][..], "--partitions"),
        (&["--max-message-bytes", "0"][..], "--max-message-bytes"),
        (&["--subscribe-buffer", "0"][..], "--subscribe-buffer"),
        (&["--max-watchers", "0"][..], "--max-watchers"),
        (&["--max-publish-streams", "0"][..], "--max-publish-streams"),
        (&["--max-headers", "100000"][..], "--max-headers"),
        (&["--shutdown-timeout", "0s"][..], "--shutdown-timeout"),
        (&["--keepalive", "0s"][..], "--keepalive"),
        (
            &["--max-concurrent-streams", "0"][..],
            "--max-concurrent-streams",
        ),
        (&["--analytics-group", " "][..], "--analytics-group"),
        (&["--analytics-group", "a b"][..], "--analytics-group"),
        (&["--max-pages", "0"][..], "--max-pages"),
        (
            &["--subscribe-buffer-bytes", "10"][..],
            "--subscribe-buffer-bytes",
        ),
        (&["--max-page-name-bytes", "0"][..], "--max-page-name-bytes"),
        (&["--stats-tick", "0s"][..], "--stats-tick"),
        (&["--supplier-interval", "0s"][..], "--supplier-interval"),
        (&["--supplier-max-rate", "NaN"][..], "--supplier-max-rate"),
        (&["--supplier-rate", "1e-300"][..], "--supplier-*"),
        (&["--window", "0s"][..], "--window/--window-advance/--grace"),
        (&["--cors-origins", "a\nb"][..], "--cors-origins"),
        (&["--cors-origins", "*"][..], "--cors-origins"),
        (
            &["--auth-file", "/nonexistent/auth.toml"][..],
            "--auth-file",
        ),
        (&["--jwt-key", "/nonexistent/key.pem"][..], "--jwt-key"),
        (&["--max-event-sessions", "0"][..], "--max-event-sessions"),
        (
            &["--principal-max-event-sessions", "0"][..],
            "--principal-max-event-sessions",
        ),
        (
            &["--max-event-session-ttl", "0s"][..],
            "--max-event-session-ttl",
        ),
    ] {
        let error = resolve(args).expect_err("invalid");
        assert_eq!(error.flag, flag, "{args:?}: {error}");
        assert!(error.to_string().starts_with(flag), "{error}");
    }
}

#[test]
fn protected_mode_refuses_an_open_server_on_other_interfaces() {
    let error = resolve(&["--listen", "0.0.0.0:8080"]).expect_err("open to the network");
    assert_eq!(error.flag, "--auth-file");
    assert!(error.message.contains("--insecure-no-auth"), "{error}");
    let error = resolve(&["--metrics-listen", "0.0.0.0:9090"]).expect_err("open metrics port");
    assert!(
        error.message.starts_with("--metrics-listen 0.0.0.0:9090"),
        "{error}"
    );
    for ok in [
        &["--metrics-listen", "127.0.0.1:9090"][..],
        &["--metrics-listen", "0.0.0.0:9090", "--insecure-no-auth"][..],
        &["--listen", "0.0.0.0:8080", "--insecure-no-auth"][..],
        &["--listen", "[::1]:8080"][..],
        &["--listen", "127.0.0.2:8080"][..],
    ] {
        let settings = resolve(ok).expect("allowed");
        assert!(!settings.authenticator.is_required(), "{ok:?}");
    }
}

#[test]
fn tls_is_off_by_default() {
    let settings = resolve(&[]).expect("valid");
    assert!(settings.tls.is_none());
}

#[test]
fn tls_flags_go_together() {
    for (args, flag) in [
        (&["--tls-cert", "cert.pem"][..], "--tls-key"),
        (&["--tls-key", "key.pem"][..], "--tls-cert"),
        (&["--tls-client-ca", "ca.pem"][..], "--tls-client-ca"),
        (
            &["--tls-client-ca", "ca.pem", "--tls-key", "key.pem"][..],
            "--tls-cert",
        ),
        (
            &[
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--tls-reload-interval",
                "0s",
            ][..],
            "--tls-reload-interval",
        ),
    ] {
        let error = resolve(args).expect_err("invalid");
        assert_eq!(error.flag, flag, "{args:?}: {error}");
        assert!(error.to_string().starts_with(flag), "{error}");
    }
}

#[test]
fn an_auth_file_turns_authentication_on_and_reserves_the_server_groups() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(
        &mut file,
        format!(
            "[[principal]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nallow = [\"stats\"]\n",
            crate::auth::token_sha256_hex("t")
        )
        .as_bytes(),
    )
    .expect("write");
    let path = file.path().to_str().expect("utf-8 path");
    let locked = ["--listen", "0.0.0.0:8080", "--auth-file", path];
    // The embedded broker's port has no authentication: a side door, refused unless accepted.
    let error = resolve(&locked).expect_err("the embedded broker with auth");
    assert_eq!(error.flag, "--brokers", "{error}");
    assert!(
        error.message.contains("--insecure-embedded-broker"),
        "{error}"
    );
    resolve(&[&locked[..], &["--insecure-embedded-broker"]].concat()).expect("accepted");
    let settings = resolve(&[&locked[..], &["--brokers", "kafka:9092"]].concat()).expect("locked");
    assert!(settings.authenticator.is_required());
    let reserved = settings.reserved();
    assert_eq!(reserved.stats_topic, "R4");
    assert_eq!(
        reserved.server_groups,
        ["streamgate-analytics", "streamgate-transform"]
    );
}

#[test]
fn unreadable_tls_files_fail_naming_the_flag_and_the_file() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let missing = dir.path().join("missing.pem");
    let (garbage, missing) = (
        garbage.to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
    );
    for (args, flag, file) in [
        (
            &["--tls-cert", missing, "--tls-key", garbage][..],
            "--tls-cert",
            missing,
        ),
        (
            &["--tls-cert", garbage, "--tls-key", garbage][..],
            "--tls-cert",
            garbage,
        ),
    ] {
        let error = resolve(args).expect_err("invalid");
        assert_eq!(error.flag, flag, "{args:?}: {error}");
        assert!(error.to_string().contains(file), "{error}");
    }
}

#[test]
fn derived_topics_follow_the_settings_they_come_from() {
    let mut settings = resolve(&[]).expect("defaults are valid");
    settings.supplier.settings.topic = TopicName::new("events".to_owned()).expect("valid");
    settings.analytics.group = "counts".into();
    assert_eq!(settings.transform_input().as_str(), "events");
    assert_eq!(
        settings.analytics_dead_letters().expect("valid").as_str(),
        "error.events.counts"
    );
    assert_eq!(
        settings.transform_dead_letters().expect("valid").as_str(),
        "error.events.streamgate-transform"
    );
    assert_eq!(
        settings.reserved().server_groups,
        ["counts", "streamgate-transform"]
    );
    settings.analytics.group = "a/b".into();
    let error = settings
        .analytics_dead_letters()
        .expect_err("not a topic name");
    assert_eq!(error.flag, "--analytics-group", "{error}");
}

#[test]
fn allowed_hosts_are_normalised_and_checked() {
    let settings = resolve(&["--allowed-hosts", "Gateway.Internal.,.corp.example"]).expect("valid");
    assert_eq!(
        settings.http.allowed_hosts,
        Some(vec![
            "gateway.internal".to_owned(),
            ".corp.example".to_owned()
        ])
    );
    let any = resolve(&["--allowed-hosts", "*"]).expect("valid");
    assert_eq!(any.http.allowed_hosts, None);
    let none = resolve(&[]).expect("valid");
    assert_eq!(none.http.allowed_hosts, Some(Vec::new()));
    for bad in ["bad host", "evil.example:80", "."] {
        let error = resolve(&["--allowed-hosts", bad]).expect_err("not a host name");
        assert_eq!(error.flag, "--allowed-hosts", "{bad}: {error}");
    }
}
