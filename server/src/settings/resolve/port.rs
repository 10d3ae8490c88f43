//! The flags of the port's HTTP side (keepalive, CORS, allowed hosts, connection caps,
//! health watches) and of the principals' rate quotas, resolved and checked.

use std::time::Duration;

use super::super::{HttpSettings, InvalidSetting, QuotaSettings, invalid};
use crate::config::Config;

pub(super) fn http(config: &Config) -> Result<HttpSettings, InvalidSetting> {
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
            total: config.tenancy.max_health_watches,
            per_connection: config.tenancy.max_health_watches_per_connection,
        },
    })
}

fn connection_caps(config: &Config) -> Result<crate::connections::Caps, InvalidSetting> {
    if config.tenancy.max_connections == 0 {
        return invalid("--max-connections", "must be 1 or more");
    }
    if config.tenancy.max_connections_per_ip == 0 {
        return invalid("--max-connections-per-ip", "must be 1 or more");
    }
    if config.tenancy.handshake_timeout < Duration::from_millis(100) {
        return invalid("--handshake-timeout", "must be at least 100ms");
    }
    if config.tenancy.idle_timeout < Duration::from_secs(1) {
        return invalid("--idle-timeout", "must be at least 1s");
    }
    Ok(crate::connections::Caps {
        total: config.tenancy.max_connections,
        per_ip: config
            .tenancy
            .max_connections_per_ip
            .min(config.tenancy.max_connections),
        first_bytes: config.tenancy.handshake_timeout,
        idle: config.tenancy.idle_timeout,
    })
}

pub(super) fn quotas(config: &Config) -> Result<QuotaSettings, InvalidSetting> {
    for (flag, rate) in [
        (
            "--quota-publish-records",
            config.tenancy.quota_publish_records,
        ),
        ("--quota-publish-bytes", config.tenancy.quota_publish_bytes),
        ("--quota-read-records", config.tenancy.quota_read_records),
        ("--quota-read-bytes", config.tenancy.quota_read_bytes),
    ] {
        if !rate.is_finite() || rate < 0.0 {
            return invalid(flag, "must be a rate a second, 0 (no quota) or more");
        }
    }
    if config.tenancy.quota_burst.is_zero() {
        return invalid("--quota-burst", "must be more than zero");
    }
    Ok(QuotaSettings {
        publish_records: config.tenancy.quota_publish_records,
        publish_bytes: config.tenancy.quota_publish_bytes,
        read_records: config.tenancy.quota_read_records,
        read_bytes: config.tenancy.quota_read_bytes,
        burst: config.tenancy.quota_burst,
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
