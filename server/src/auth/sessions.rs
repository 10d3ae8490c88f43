//! Sessions for a browser's `EventSource`, which cannot send an `authorization` header.
//!
//! An authenticated call (OpenEventSession) opens one: a random 256-bit id, handed to the
//! browser as an HttpOnly, SameSite=Strict cookie and mapped here to the principal that
//! opened it. The authentication layer accepts the cookie on the SSE routes only — GETs that
//! read — so a cookie can never publish or steer anything; a page of another site neither
//! sends it (SameSite=Strict) nor reads it (HttpOnly); and no token ever travels in a URL.
//! Ids are kept as their SHA-256, so the table holds nothing a reader of memory could
//! replay. The table is bounded in total and per principal; a principal over its share loses
//! its oldest session rather than being locked out by its own reloads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::Principal;

/// The cookie's name.
pub const COOKIE: &str = "streamgate_session";

/// A session's lifetime when the caller asks for none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Bytes of randomness in a session id.
const ID_BYTES: usize = 32;

/// How many sessions there may be, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions open at once on the server (`--max-event-sessions`).
    pub max_sessions: usize,
    /// Sessions one principal may hold (`--principal-max-event-sessions`).
    pub per_principal: usize,
    /// The longest lifetime (`--max-event-session-ttl`).
    pub max_ttl: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions: 10_000,
            per_principal: 16,
            max_ttl: Duration::from_secs(3600),
        }
    }
}

/// Why a session was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The table is full of other principals' live sessions.
    #[error(
        "{0} event sessions are open on this server (--max-event-sessions); try again when some have expired"
    )]
    Full(usize),
    /// The credential that asked has already expired.
    #[error("the credential has expired")]
    Expired,
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct Opened {
    /// When it stops being accepted.
    pub expires: SystemTime,
    /// The `set-cookie` header value that hands it to the browser.
    pub set_cookie: String,
}

/// The open sessions.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    /// Whether cookies get `Secure` (the port serves TLS).
    secure: bool,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<[u8; 32], Entry>,
    /// Counts openings, so a principal's oldest session is known.
    opened: u64,
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    expires: SystemTime,
    opened: u64,
}

impl Sessions {
    /// An empty table; `secure` when the port serves TLS.
    pub fn new(limits: SessionLimits, secure: bool) -> Self {
        Self {
            limits,
            secure,
            table: Mutex::default(),
        }
    }

    /// Opens a session for `principal` lasting `ttl` (or [`DEFAULT_TTL`]), shortened to the
    /// limit and to the principal's own expiry.
    pub fn open(&self, principal: &Principal, ttl: Option<Duration>) -> Result<Opened, OpenError> {
        let now = SystemTime::now();
        let ttl = ttl
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TTL)
            .min(self.limits.max_ttl);
        let mut expires = now.checked_add(ttl).unwrap_or(now);
        if let Some(credential_ends) = principal.expires() {
            expires = expires.min(credential_ends);
        }
        let lifetime = expires
            .duration_since(now)
            .map_err(|_| OpenError::Expired)?;
        if lifetime.is_zero() {
            return Err(OpenError::Expired);
        }
        let mut id = [0u8; ID_BYTES];
        rand::rng().fill_bytes(&mut id);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.by_id.retain(|_, entry| entry.expires > now);
        table.make_room_for(principal.name(), self.limits.per_principal);
        if table.by_id.len() >= self.limits.max_sessions {
            return Err(OpenError::Full(self.limits.max_sessions));
        }
        table.opened += 1;
        let entry = Entry {
            principal: principal.for_session(expires),
            expires,
            opened: table.opened,
        };
        table.by_id.insert(Sha256::digest(id).into(), entry);
        Ok(Opened {
            expires,
            set_cookie: self.set_cookie(&URL_SAFE_NO_PAD.encode(id), lifetime),
        })
    }

    /// The principal of the session a request's cookie names, if it is open.
    pub fn principal(&self, headers: &HeaderMap) -> Option<Principal> {
        let id = URL_SAFE_NO_PAD.decode(cookie(headers)?).ok()?;
        let key: [u8; 32] = Sha256::digest(&id).into();
        let now = SystemTime::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.by_id.get(&key) {
            Some(entry) if entry.expires > now => Some(entry.principal.clone()),
            Some(_) => {
                table.by_id.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Whether a request carries a session cookie at all.
    pub fn has_cookie(headers: &HeaderMap) -> bool {
        cookie(headers).is_some()
    }

    fn set_cookie(&self, id: &str, lifetime: Duration) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={id}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            lifetime.as_secs().max(1)
        )
    }
}

impl Table {
    /// Drops `name`'s oldest sessions until it holds fewer than `share`.
    fn make_room_for(&mut self, name: &str, share: usize) {
        loop {
            let theirs = self
                .by_id
                .iter()
                .filter(|(_, e)| e.principal.name() == name);
            let (count, oldest) = theirs.fold((0, None), |(n, oldest), (key, e)| {
                let older = oldest.is_none_or(|(_, at)| e.opened < at);
                (
                    n + 1,
                    if older {
                        Some((*key, e.opened))
                    } else {
                        oldest
                    },
                )
            });
            match oldest {
                Some((key, _)) if count >= share => {
                    self.by_id.remove(&key);
                }
                _ => return,
            }
        }
    }
}

/// The session cookie's value: HTTP/2 may split cookies over several `cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| value.len() <= 2 * ID_BYTES)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::{Credential, Permission};

    fn principal(name: &str, expires: Option<SystemTime>) -> Principal {
        let grants: Arc<[Permission]> = Arc::from([Permission::Admin]);
        Principal::new(name, grants, Credential::Token, expires)
    }

    fn headers_with(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().expect("a pair");
        let mut headers = HeaderMap::new();
        headers.append("cookie", "theme=dark".parse().expect("ascii"));
        headers.append("cookie", pair.parse().expect("ascii"));
        headers
    }

    #[test]
    fn a_cookie_names_its_principal_as_a_session_until_it_expires() {
        let sessions = Sessions::new(SessionLimits::default(), false);
        let opened = sessions.open(&principal("ana", None), None).expect("opens");
        assert!(opened.set_cookie.contains("HttpOnly; SameSite=Strict"));
        assert!(
            opened.set_cookie.contains("Max-Age=900"),
            "{}",
            opened.set_cookie
        );
        assert!(!opened.set_cookie.contains("Secure"));
        let found = sessions
            .principal(&headers_with(&opened.set_cookie))
            .expect("known");
        assert_eq!(found.name(), "ana");
        assert_eq!(found.credential(), Credential::Session);
        assert_eq!(found.expires(), Some(opened.expires));
        let mut forged = HeaderMap::new();
        forged.insert("cookie", format!("{COOKIE}=AAAA").parse().expect("ascii"));
        assert!(sessions.principal(&forged).is_none());
        assert!(sessions.principal(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_session_never_outlives_its_credential_or_the_limit() {
        let limits = SessionLimits {
            max_ttl: Duration::from_secs(60),
            ..SessionLimits::default()
        };
        let sessions = Sessions::new(limits, true);
        let long = sessions
            .open(&principal("ana", None), Some(Duration::from_secs(86_400)))
            .expect("opens");
        assert!(long.set_cookie.contains("Max-Age=60; "));
        assert!(long.set_cookie.ends_with("; Secure"));
        let soon = SystemTime::now() + Duration::from_secs(5);
        let jwt = sessions
            .open(&principal("jo", Some(soon)), None)
            .expect("opens");
        assert_eq!(jwt.expires, soon);
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            sessions.open(&principal("old", Some(past)), None).err(),
            Some(OpenError::Expired)
        );
    }

    #[test]
    fn one_principal_keeps_its_newest_sessions_and_cannot_fill_the_table() {
        let limits = SessionLimits {
            max_sessions: 4,
            per_principal: 2,
            ..SessionLimits::default()
        };
        let sessions = Sessions::new(limits, false);
        let ana = principal("ana", None);
        let cookies: Vec<_> = (0..5)
            .map(|_| sessions.open(&ana, None).expect("opens").set_cookie)
            .collect();
        let live = |c: &String| sessions.principal(&headers_with(c)).is_some();
        assert_eq!(
            cookies.iter().map(live).collect::<Vec<_>>(),
            [false, false, false, true, true]
        );
        sessions.open(&principal("bo", None), None).expect("room");
        sessions.open(&principal("cy", None), None).expect("room");
        assert_eq!(
            sessions.open(&principal("di", None), None).err(),
            Some(OpenError::Full(4))
        );
        // Ana still renews within her own share.
        sessions.open(&ana, None).expect("her oldest makes room");
    }

    #[test]
    fn an_expired_session_is_refused_and_forgotten() {
        let sessions = Sessions::new(SessionLimits::default(), false);
        let soon = SystemTime::now() + Duration::from_millis(20);
        let opened = sessions
            .open(&principal("ana", Some(soon)), None)
            .expect("opens");
        let headers = headers_with(&opened.set_cookie);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sessions.principal(&headers).is_some() {
            assert!(std::time::Instant::now() < deadline, "still accepted");
            std::thread::yield_now();
        }
        let table = sessions.table.lock().expect("lock");
        assert!(table.by_id.is_empty());
    }
}
