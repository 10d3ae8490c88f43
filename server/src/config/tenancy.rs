//! The flags that keep tenants apart and connections bounded: each principal's share of
//! the stream slots and its rate quotas, the admin reserve, connection caps and timeouts,
//! and the cap on health watches. Flattened into [`super::Config`]: the command line is one.

use std::time::Duration;

use clap::Args;

/// See the module.
#[derive(Debug, Clone, Args)]
pub struct TenancyFlags {
    /// Subscribe and Consume streams one principal may hold at once (its share of
    /// --max-subscriptions); an auth-file entry's `limits.subscriptions` overrides it.
    #[arg(
        long,
        env = "STREAMGATE_PRINCIPAL_MAX_SUBSCRIPTIONS",
        default_value_t = 32
    )]
    pub principal_max_subscriptions: usize,

    /// PublishStream calls one principal may hold at once; `limits.publish_streams`
    /// overrides it.
    #[arg(
        long,
        env = "STREAMGATE_PRINCIPAL_MAX_PUBLISH_STREAMS",
        default_value_t = 32
    )]
    pub principal_max_publish_streams: usize,

    /// WatchPageStats streams one principal may hold at once; `limits.watchers` overrides
    /// it.
    #[arg(long, env = "STREAMGATE_PRINCIPAL_MAX_WATCHERS", default_value_t = 256)]
    pub principal_max_watchers: usize,

    /// Slots of each kind (subscriptions, publish streams, watchers) that only principals
    /// with `admin` may take, so an admin can always get in.
    #[arg(long, env = "STREAMGATE_ADMIN_RESERVED_SLOTS", default_value_t = 8)]
    pub admin_reserved_slots: usize,

    /// Records a second each principal may publish (0: no quota); over it, a record is
    /// refused with RESOURCE_EXHAUSTED and when to retry. An auth-file entry's
    /// `quotas.publish_records` overrides it.
    #[arg(long, env = "STREAMGATE_QUOTA_PUBLISH_RECORDS", default_value_t = 0.0)]
    pub quota_publish_records: f64,

    /// Bytes a second (key + value + headers) each principal may publish (0: no quota).
    #[arg(long, env = "STREAMGATE_QUOTA_PUBLISH_BYTES", default_value_t = 0.0)]
    pub quota_publish_bytes: f64,

    /// Records a second each principal's Subscribe and Consume streams may read together
    /// (0: no quota); over it, its streams wait before their next batch.
    #[arg(long, env = "STREAMGATE_QUOTA_READ_RECORDS", default_value_t = 0.0)]
    pub quota_read_records: f64,

    /// Bytes a second each principal's streams may read (0: no quota).
    #[arg(long, env = "STREAMGATE_QUOTA_READ_BYTES", default_value_t = 0.0)]
    pub quota_read_bytes: f64,

    /// How far above its quota a principal may go at once, as time at its rate.
    #[arg(long, env = "STREAMGATE_QUOTA_BURST", default_value = "1s", value_parser = humantime::parse_duration)]
    pub quota_burst: Duration,

    /// grpc.health.v1 Watch streams open at once on the server (health needs no token, so
    /// this bounds what anyone can hold); more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_HEALTH_WATCHES", default_value_t = 1024)]
    pub max_health_watches: usize,

    /// grpc.health.v1 Watch streams open at once on one connection.
    #[arg(
        long,
        env = "STREAMGATE_MAX_HEALTH_WATCHES_PER_CONNECTION",
        default_value_t = 16
    )]
    pub max_health_watches_per_connection: usize,

    /// Connections open at once on a port; more are closed as soon as they are accepted.
    #[arg(long, env = "STREAMGATE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Connections open at once from one IP address on a port.
    #[arg(
        long,
        env = "STREAMGATE_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1024
    )]
    pub max_connections_per_ip: usize,

    /// How long a new connection has to send its first bytes (and, with TLS, again to
    /// finish its handshake); a silent one is closed.
    #[arg(long, env = "STREAMGATE_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// How long a connection may stay without an open call before it is closed (keepalive
    /// pings do not count as use).
    #[arg(long, env = "STREAMGATE_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// EventSource sessions (OpenEventSession cookies) open at once on the server; more are
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "STREAMGATE_MAX_EVENT_SESSIONS", default_value_t = 10_000)]
    pub max_event_sessions: usize,

    /// EventSource sessions one principal may hold; opening another ends its oldest.
    #[arg(
        long,
        env = "STREAMGATE_PRINCIPAL_MAX_EVENT_SESSIONS",
        default_value_t = 16
    )]
    pub principal_max_event_sessions: usize,

    /// The longest an EventSource session lasts (a longer request is shortened to it).
    #[arg(long, env = "STREAMGATE_MAX_EVENT_SESSION_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_event_session_ttl: Duration,
}
