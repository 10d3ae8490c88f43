//! [`Settings::resolve`]: the flags ([`Config`]) checked and turned into typed settings, the
//! first bad flag named in the error. The TLS and authentication files are read here, once.

use std::sync::Arc;
use std::time::Duration;

use streamgate::time::millis_of_std;
use streamgate::topic::TopicName;

use super::{
    Analytics, HttpSettings, InvalidSetting, KafkaSettings, Limits, QuotaSettings, Settings,
    SupplierStage, Timeouts, Topics, TransformStage, invalid,
};
use crate::analytics::WindowSpec;
use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::supplier;
use crate::tls::{self, TlsFiles, TlsSettings};

/// Highest `--supplier-max-rate`: far above what one producer sustains.
const MAX_SUPPLIER_RATE: f64 = 10_000_000.0;

/// Smallest `--subscribe-buffer-bytes`: room for one record of the default size limit.
const MIN_SUBSCRIBE_BUFFER_BYTES: usize = 1024 * 1024;

/// Highest `--max-headers`.
const MAX_HEADERS: usize = 65_536;

/// Largest record size accepted by `--max-message-bytes`.
const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

impl Settings {
    /// Resolves and checks every flag; the first bad one is the error.
    pub fn resolve(config: &Config) -> Result<Self, InvalidSetting> {
        let supplier = supplier_stage(config)?;
        let settings = Self {
            listen: config.listen,
            kafka: KafkaSettings {
                brokers: config.brokers.clone(),
                options: config.kafka_options.clone(),
                insecure_embedded: config.insecure_embedded_broker,
            },
            tls: tls_settings(config)?,
            timeouts: timeouts(config)?,
            limits: limits(config)?,
            http: http(config)?,
            transform: TransformStage {
                run: config.transform,
                group: group("--transform-group", &config.transform_group)?,
            },
            log_consumer: config.log_consumer,
            analytics: analytics(config)?,
            linger: config.linger,
            subscribe_fetch_wait: config.subscribe_fetch_wait,
            metrics_listen: config.metrics_listen,
            metrics_max_label_values: match config.metrics_max_label_values {
                0 => return invalid("--metrics-max-label-values", "must be 1 or more"),
                n => n,
            },
            authenticator: authenticator(config)?,
            auto_create_topics: config.auto_create_topics,
            supplier,
            topics: topics(config)?,
        };
        // Checked now, so that a flag that breaks them is named at start-up.
        settings.transform_dead_letters()?;
        settings.analytics_dead_letters()?;
        settings.check_embedded_broker(config.brokers.is_none())?;
        Ok(settings)
    }
}

fn topic(flag: &'static str, name: &str) -> Result<TopicName, InvalidSetting> {
    TopicName::new(name.to_owned()).or_else(|e| invalid(flag, e.to_string()))
}

fn topics(config: &Config) -> Result<Topics, InvalidSetting> {
    if config.partitions < 1 {
        return invalid(
            "--partitions",
            format!("must be 1 or more, got {}", config.partitions),
        );
    }
    if config.replication_factor < 1 {
        return invalid(
            "--replication-factor",
            format!("must be 1 or more, got {}", config.replication_factor),
        );
    }
    Ok(Topics {
        log: topic("--log-topic", &config.log_topic)?,
        transform_input: config
            .transform_input
            .as_deref()
            .map(|name| topic("--transform-input", name))
            .transpose()?,
        transform_output: topic("--transform-topic", &config.transform_topic)?,
        stats: topic("--stats-topic", &config.stats_topic)?,
        partitions: config.partitions,
        replication_factor: config.replication_factor,
    })
}

fn timeouts(config: &Config) -> Result<Timeouts, InvalidSetting> {
    if config.request_timeout.is_zero() {
        return invalid("--request-timeout", "must be more than zero");
    }
    if config.shutdown_timeout.is_zero() {
        return invalid("--shutdown-timeout", "must be more than zero");
    }
    Ok(Timeouts {
        request: config.request_timeout,
        shutdown: config.shutdown_timeout,
    })
}

fn limits(config: &Config) -> Result<Limits, InvalidSetting> {
    if config.max_message_bytes == 0 || config.max_message_bytes > MAX_MESSAGE_BYTES {
        return invalid(
            "--max-message-bytes",
            format!("must be between 1 and {MAX_MESSAGE_BYTES}"),
        );
    }
    if config.max_subscriptions == 0 {
        return invalid("--max-subscriptions", "must be 1 or more");
    }
    for (flag, value) in [
        ("--subscribe-buffer", config.subscribe_buffer),
        ("--max-publish-streams", config.max_publish_streams),
        ("--max-watchers", config.max_watchers),
        ("--max-subscribe-topics", config.max_subscribe_topics),
        ("--max-page-name-bytes", config.max_page_name_bytes),
        ("--consume-max-outstanding", config.consume_max_outstanding),
        (
            "--principal-max-subscriptions",
            config.principal_max_subscriptions,
        ),
        (
            "--principal-max-publish-streams",
            config.principal_max_publish_streams,
        ),
        ("--principal-max-watchers", config.principal_max_watchers),
    ] {
        if value == 0 {
            return invalid(flag, "must be 1 or more");
        }
    }
    if config.subscribe_buffer_bytes < MIN_SUBSCRIBE_BUFFER_BYTES {
        return invalid(
            "--subscribe-buffer-bytes",
            format!("must be at least {MIN_SUBSCRIBE_BUFFER_BYTES}"),
        );
    }
    if config.consume_max_outstanding_bytes < MIN_SUBSCRIBE_BUFFER_BYTES {
        return invalid(
            "--consume-max-outstanding-bytes",
            format!("must be at least {MIN_SUBSCRIBE_BUFFER_BYTES}"),
        );
    }
    // The reserve leaves at least one slot of every kind to everyone else.
    let smallest = config
        .max_subscriptions
        .min(config.max_publish_streams)
        .min(config.max_watchers);
    if config.admin_reserved_slots >= smallest {
        return invalid(
            "--admin-reserved-slots",
            format!(
                "must be less than every --max-subscriptions/--max-publish-streams/--max-watchers (the smallest is {smallest})"
            ),
        );
    }
    if config.max_headers > MAX_HEADERS {
        return invalid("--max-headers", format!("must be at most {MAX_HEADERS}"));
    }
    Ok(Limits {
        max_message_bytes: config.max_message_bytes,
        max_subscriptions: config.max_subscriptions,
        subscribe_buffer: config.subscribe_buffer,
        max_headers: config.max_headers,
        max_timestamp_ahead: config.max_timestamp_ahead,
        max_publish_streams: config.max_publish_streams,
        max_watchers: config.max_watchers,
        max_subscribe_topics: config.max_subscribe_topics,
        subscribe_buffer_bytes: config.subscribe_buffer_bytes,
        max_page_name_bytes: config.max_page_name_bytes,
        consume_max_outstanding: config.consume_max_outstanding,
        consume_max_outstanding_bytes: config.consume_max_outstanding_bytes,
        max_dead_letter_topics: config.max_dead_letter_topics,
        principal_max_subscriptions: config.principal_max_subscriptions,
        principal_max_publish_streams: config.principal_max_publish_streams,
        principal_max_watchers: config.principal_max_watchers,
        admin_reserved_slots: config.admin_reserved_slots,
        quotas: quotas(config)?,
    })
}

fn http(config: &Config) -> Result<HttpSettings, InvalidSetting> {
    if config.keepalive < Duration::from_secs(1) {
        return invalid("--keepalive", "must be at least 1s");
    }
    if config.keepalive_timeout.is_zero() {
        return invalid("--keepalive-timeout", "must be more than zero");
    }
    if config.max_concurrent_streams == 0 {
        return invalid("--max-concurrent-streams", "must be 1 or more");
    }
    for origin in &config.cors_origins {
        if origin == "*" || origin == "null" {
            return invalid(
                "--cors-origins",
                format!(
                    "{origin:?} would let any web page call the server: list the origins, e.g. https://ops.example.com"
                ),
            );
        }
        if origin.parse::<http::HeaderValue>().is_err() {
            return invalid(
                "--cors-origins",
                format!("{origin:?} is not a valid origin"),
            );
        }
    }
    Ok(HttpSettings {
        cors_origins: config.cors_origins.clone(),
        allowed_hosts: allowed_hosts(&config.allowed_hosts)?,
        keepalive: config.keepalive,
        keepalive_timeout: config.keepalive_timeout,
        max_concurrent_streams: config.max_concurrent_streams,
        connections: connection_caps(config)?,
        health_watches: crate::http::WatchCaps {
            total: config.max_health_watches,
            per_connection: config.max_health_watches_per_connection,
        },
    })
}

fn connection_caps(config: &Config) -> Result<crate::connections::Caps, InvalidSetting> {
    if config.max_connections == 0 {
        return invalid("--max-connections", "must be 1 or more");
    }
    if config.max_connections_per_ip == 0 {
        return invalid("--max-connections-per-ip", "must be 1 or more");
    }
    if config.handshake_timeout < Duration::from_millis(100) {
        return invalid("--handshake-timeout", "must be at least 100ms");
    }
    if config.idle_timeout < Duration::from_secs(1) {
        return invalid("--idle-timeout", "must be at least 1s");
    }
    Ok(crate::connections::Caps {
        total: config.max_connections,
        per_ip: config.max_connections_per_ip.min(config.max_connections),
        first_bytes: config.handshake_timeout,
        idle: config.idle_timeout,
    })
}

fn quotas(config: &Config) -> Result<QuotaSettings, InvalidSetting> {
    for (flag, rate) in [
        ("--quota-publish-records", config.quota_publish_records),
        ("--quota-publish-bytes", config.quota_publish_bytes),
        ("--quota-read-records", config.quota_read_records),
        ("--quota-read-bytes", config.quota_read_bytes),
    ] {
        if !rate.is_finite() || rate < 0.0 {
            return invalid(flag, "must be a rate a second, 0 (no quota) or more");
        }
    }
    if config.quota_burst.is_zero() {
        return invalid("--quota-burst", "must be more than zero");
    }
    Ok(QuotaSettings {
        publish_records: config.quota_publish_records,
        publish_bytes: config.quota_publish_bytes,
        read_records: config.quota_read_records,
        read_bytes: config.quota_read_bytes,
        burst: config.quota_burst,
    })
}

/// Names as the guard compares them (lower case, no trailing dot); `*` alone turns the
/// check off.
fn allowed_hosts(names: &[String]) -> Result<Option<Vec<String>>, InvalidSetting> {
    if names.iter().any(|name| name == "*") {
        return Ok(None);
    }
    let mut allowed = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let label = name.strip_prefix('.').unwrap_or(&name);
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return invalid(
                "--allowed-hosts",
                format!(
                    "{name:?} is not a host name (e.g. gateway.internal, or .example.com for its subdomains too)"
                ),
            );
        }
        allowed.push(name);
    }
    Ok(Some(allowed))
}

fn authenticator(config: &Config) -> Result<Arc<Authenticator>, InvalidSetting> {
    let sources = auth::Sources {
        auth_file: config.auth_file.clone(),
        jwt_key: config.jwt_key.clone(),
        jwt_expected: auth::JwtExpected {
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        },
        client_certificates: config.tls_client_ca.is_some(),
    };
    let authenticator =
        Authenticator::load(&sources).or_else(|(flag, message)| invalid(flag, message))?;
    protected_mode(config, &authenticator)?;
    Ok(Arc::new(authenticator))
}

/// Like Redis's protected mode: a server reachable from other machines with no lock at all
/// is a mistake unless the operator says otherwise.
fn protected_mode(config: &Config, authenticator: &Authenticator) -> Result<(), InvalidSetting> {
    if authenticator.is_required() || config.insecure_no_auth {
        return Ok(());
    }
    let listeners = [
        ("--listen", Some(config.listen)),
        ("--metrics-listen", config.metrics_listen),
    ];
    for (flag, address) in listeners {
        let Some(address) = address.filter(|a| !a.ip().is_loopback()) else {
            continue;
        };
        return invalid(
            "--auth-file",
            format!(
                "{flag} {address} is reachable from other machines and no authentication is configured: \
                 pass --auth-file (or --jwt-key, or --tls-client-ca) so that callers need a token, \
                 or --insecure-no-auth to serve everyone deliberately"
            ),
        );
    }
    Ok(())
}

/// Shortest `--tls-reload-interval`: the poll reads three files' metadata.
const MIN_TLS_RELOAD_INTERVAL: Duration = Duration::from_millis(10);

impl From<tls::LoadError> for InvalidSetting {
    fn from(error: tls::LoadError) -> Self {
        Self {
            flag: error.flag,
            message: format!("{}: {}", error.path.display(), error.message),
        }
    }
}

/// TLS when both the certificate and the key are given. The files are loaded once here, so
/// that a bad one stops the server before anything starts.
fn tls_settings(config: &Config) -> Result<Option<TlsSettings>, InvalidSetting> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) if config.tls_client_ca.is_some() => {
            return invalid(
                tls::CLIENT_CA_FLAG,
                "needs --tls-cert and --tls-key: mutual TLS is TLS first",
            );
        }
        (None, None) => return Ok(None),
        (Some(_), None) => return invalid(tls::KEY_FLAG, "missing: --tls-cert needs it"),
        (None, Some(_)) => return invalid(tls::CERT_FLAG, "missing: --tls-key needs it"),
    };
    if config.tls_reload_interval < MIN_TLS_RELOAD_INTERVAL {
        return invalid("--tls-reload-interval", "must be at least 10ms");
    }
    let files = TlsFiles {
        cert,
        key,
        client_ca: config.tls_client_ca.clone(),
    };
    Ok(Some(TlsSettings::load(files, config.tls_reload_interval)?))
}

fn group(flag: &'static str, name: &str) -> Result<String, InvalidSetting> {
    if name.trim().is_empty() {
        return invalid(flag, "must not be empty");
    }
    Ok(name.to_owned())
}

fn supplier_stage(config: &Config) -> Result<SupplierStage, InvalidSetting> {
    let rate_per_second = match (config.supplier_rate, config.supplier_interval) {
        (Some(rate), _) => rate,
        (None, Some(interval)) if !interval.is_zero() => 1.0 / interval.as_secs_f64(),
        (None, Some(_)) => return invalid("--supplier-interval", "must be more than zero"),
        (None, None) => 1.0,
    };
    let max_rate = config.supplier_max_rate;
    if !(supplier::MIN_RATE..=MAX_SUPPLIER_RATE).contains(&max_rate) {
        return invalid(
            "--supplier-max-rate",
            format!(
                "must be between {} and {MAX_SUPPLIER_RATE} events/s, got {max_rate}",
                supplier::MIN_RATE
            ),
        );
    }
    let settings = supplier::Settings {
        rate_per_second,
        pages: config.supplier_pages.clone(),
        users: config.supplier_users.clone(),
        min_duration_ms: config.supplier_duration.0,
        max_duration_ms: config.supplier_duration.1,
        topic: topic("--supplier-topic", &config.supplier_topic)?,
    };
    settings
        .validate(config.supplier_max_rate)
        .or_else(|e| invalid("--supplier-*", e.to_string()))?;
    Ok(SupplierStage {
        settings,
        running: !config.supplier_stopped,
        max_rate: config.supplier_max_rate,
    })
}

fn analytics(config: &Config) -> Result<Analytics, InvalidSetting> {
    let spec = WindowSpec::new(
        millis_of_std(config.window),
        millis_of_std(config.window_advance.unwrap_or(config.window)),
        millis_of_std(config.grace),
    )
    .or_else(|e| invalid("--window/--window-advance/--grace", e.to_string()))?;
    if config.stats_tick.is_zero() || config.stats_tick > Duration::from_secs(60) {
        return invalid("--stats-tick", "must be between 1ms and 60s");
    }
    if config.stats_retention < config.window {
        return invalid("--stats-retention", "must be at least one --window");
    }
    if config.max_pages == 0 {
        return invalid("--max-pages", "must be 1 or more");
    }
    Ok(Analytics {
        worker: config.analytics,
        group: group("--analytics-group", &config.analytics_group)?,
        transactional_id: config.analytics_transactional_id.clone(),
        spec,
        min_duration_ms: config.min_duration,
        tick: config.stats_tick,
        retention: config.stats_retention,
        max_event_skew: config.max_event_skew,
        max_pages: config.max_pages,
    })
}
