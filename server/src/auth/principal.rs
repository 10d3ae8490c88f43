//! Who is calling: the principal an authenticated request carries in its extensions.

use std::sync::Arc;
use std::time::SystemTime;

use super::permission::{Need, Permission};

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No authentication is configured: every caller is this one, with every permission.
    Open,
    /// A bearer token whose hash is in the auth file.
    Token,
    /// A JWT signed with the `--jwt-key`.
    Jwt,
    /// A client certificate verified against `--tls-client-ca`.
    Certificate,
    /// An EventSource session's cookie, opened with one of the others (SSE routes only).
    Session,
}

/// A principal's own share of the stream slots (the auth file's `limits`); a kind left out
/// gets the server's `--principal-max-*` share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotLimits {
    /// Subscribe and Consume streams.
    pub subscriptions: Option<usize>,
    /// PublishStream calls.
    pub publish_streams: Option<usize>,
    /// WatchPageStats streams.
    pub watchers: Option<usize>,
}

/// A principal's own rate quotas (the auth file's `quotas`), per second; a rate left out
/// gets the server's `--quota-*` flag, 0 is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    /// Records published a second.
    pub publish_records: Option<f64>,
    /// Bytes published a second.
    pub publish_bytes: Option<f64>,
    /// Records read a second.
    pub read_records: Option<f64>,
    /// Bytes read a second.
    pub read_bytes: Option<f64>,
}

/// An authenticated caller and what it may do. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Principal {
    name: Arc<str>,
    grants: Arc<[Permission]>,
    credential: Credential,
    expires: Option<SystemTime>,
    slot_limits: SlotLimits,
    quotas: QuotaOverrides,
}

impl Principal {
    /// A principal with these grants.
    pub fn new(
        name: impl Into<Arc<str>>,
        grants: Arc<[Permission]>,
        credential: Credential,
        expires: Option<SystemTime>,
    ) -> Self {
        Self {
            name: name.into(),
            grants,
            credential,
            expires,
            slot_limits: SlotLimits::default(),
            quotas: QuotaOverrides::default(),
        }
    }

    /// The same principal with its own slot shares.
    pub fn with_slot_limits(mut self, slot_limits: SlotLimits) -> Self {
        self.slot_limits = slot_limits;
        self
    }

    /// The same principal with its own rate quotas.
    pub fn with_quotas(mut self, quotas: QuotaOverrides) -> Self {
        self.quotas = quotas;
        self
    }

    /// The same principal as an EventSource session ending at `expires`: its grants, shares
    /// and quotas stay its own.
    pub fn for_session(&self, expires: SystemTime) -> Self {
        Self {
            credential: Credential::Session,
            expires: Some(expires),
            ..self.clone()
        }
    }

    /// Its own rate quotas, where the auth file sets them.
    pub fn quotas(&self) -> QuotaOverrides {
        self.quotas
    }

    /// Its own slot shares, where the auth file sets them.
    pub fn slot_limits(&self) -> SlotLimits {
        self.slot_limits
    }

    /// The one caller of a server without authentication: allowed everything.
    pub fn open() -> Self {
        Self::new(
            "anonymous",
            Arc::from([Permission::Admin]),
            Credential::Open,
            None,
        )
    }

    /// Its name: the auth file's `name`, the JWT's `sub`, or the certificate's subject.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it authenticated.
    pub fn credential(&self) -> Credential {
        self.credential
    }

    /// When its credential stops being valid (a JWT's `exp`); streams end then.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// Whether it holds a `publish:` grant (or `admin`), whatever the topic.
    pub fn may_publish_somewhere(&self) -> bool {
        self.grants
            .iter()
            .any(|grant| matches!(grant, Permission::Publish(_) | Permission::Admin))
    }

    /// Whether one of its grants covers `need`.
    pub fn allows(&self, need: &Need<'_>) -> bool {
        self.grants.iter().any(|grant| grant.covers(need))
    }
}
