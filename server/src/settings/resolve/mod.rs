//! [`Settings::resolve`]: the flags ([`Config`]) checked and turned into typed settings, the
//! first bad flag named in the error. The TLS and authentication files are read here, once.

use std::sync::Arc;
use std::time::Duration;

use streamgate::time::millis_of_std;
use streamgate::topic::TopicName;

use super::{
    Analytics, InvalidSetting, KafkaSettings, Limits, Settings, SupplierStage, Timeouts, Topics,
    TransformStage, invalid,
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

mod port;

use port::{http, quotas};

impl Settings {
    /// Resolves and checks every flag; the first bad one is the error.
    pub fn resolve(config: &Config) -> Result<Self, InvalidSetting> {
        let supplier = supplier_stage(config)?;
        let topics = topics(config)?;
        let schemas = schemas(config, &supplier, &topics)?;
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
            event_sessions: event_sessions(config)?,
            supplier,
            topics,
            schemas,
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
            config.tenancy.principal_max_subscriptions,
        ),
        (
            "--principal-max-publish-streams",
            config.tenancy.principal_max_publish_streams,
        ),
        (
            "--principal-max-watchers",
            config.tenancy.principal_max_watchers,
        ),
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
    if config.tenancy.admin_reserved_slots >= smallest {
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
        filter: crate::filter::Limits {
            max_bytes: config.values.max_filter_bytes,
            max_cost: config.values.max_filter_cost,
            max_value_bytes: config.values.max_filter_value_bytes,
        },
        decode: crate::schema::DecodeLimits {
            max_bytes: config.values.max_decode_bytes,
            max_json_bytes: config.values.max_decoded_json_bytes,
        },
        principal_max_subscriptions: config.tenancy.principal_max_subscriptions,
        principal_max_publish_streams: config.tenancy.principal_max_publish_streams,
        principal_max_watchers: config.tenancy.principal_max_watchers,
        admin_reserved_slots: config.tenancy.admin_reserved_slots,
        quotas: quotas(config)?,
    })
}

fn event_sessions(config: &Config) -> Result<auth::SessionLimits, InvalidSetting> {
    let tenancy = &config.tenancy;
    if tenancy.max_event_sessions == 0 {
        return invalid("--max-event-sessions", "must be 1 or more");
    }
    if tenancy.principal_max_event_sessions == 0 {
        return invalid("--principal-max-event-sessions", "must be 1 or more");
    }
    if tenancy.max_event_session_ttl < Duration::from_secs(1) {
        return invalid("--max-event-session-ttl", "must be at least 1s");
    }
    Ok(auth::SessionLimits {
        max_sessions: tenancy.max_event_sessions,
        per_principal: tenancy.principal_max_event_sessions,
        max_ttl: tenancy.max_event_session_ttl,
    })
}

/// The schemas: the server's own topics' and the file's. A file that does not load stops
/// the start, naming the flag.
fn schemas(
    config: &Config,
    supplier: &SupplierStage,
    topics: &Topics,
) -> Result<Arc<crate::schema::Live>, InvalidSetting> {
    let own = crate::schema::ServerTopics {
        r2: supplier.settings.topic.to_string(),
        r3: topics.transform_output.to_string(),
        r4: topics.stats.to_string(),
    };
    crate::schema::Live::load(config.values.schemas.clone(), own)
        .map(Arc::new)
        .or_else(|e| invalid("--schemas", e.to_string()))
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
