//! Who may call and what they may do.
//!
//! - [`AuthLayer`] authenticates every request at the HTTP level (gRPC and grpc-web alike,
//!   `grpc.health.v1` excepted, so probes need no token) and puts the [`Principal`] into the
//!   request's extensions; a missing or unknown credential is UNAUTHENTICATED.
//! - The handlers then ask [`Access`] for what each call needs (`publish:<topic>`, …); it
//!   applies what is reserved to admins and answers PERMISSION_DENIED naming the missing
//!   permission.
//!
//! - A browser's EventSource, which cannot send headers, authenticates the SSE routes with
//!   a session cookie an authenticated OpenEventSession call set ([`Sessions`]).
//!
//! Without `--auth-file`, `--jwt-key` or `--tls-client-ca` the server is open: every caller
//! is the one anonymous principal with every permission (allowed on loopback only, or with
//! `--insecure-no-auth`).

mod access;
mod expiring;
mod file;
mod jwt;
mod layer;
mod permission;
mod principal;
mod refusals;
mod sessions;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use access::{Access, Denied, Reserved};
pub use expiring::Expiring;
pub use file::FilePrincipal;
#[cfg(feature = "fuzz")]
pub use file::parse as parse_auth_file;
pub use jwt::{Expected as JwtExpected, JwtVerifier};
pub use layer::AuthLayer;
#[cfg(feature = "fuzz")]
pub use permission::Glob;
pub use permission::{Need, Permission};
#[cfg(test)]
pub use principal::SlotLimits;
pub use principal::{Credential, Principal, QuotaOverrides};
pub use refusals::RefusalLog;
pub use sessions::{
    COOKIE as SESSION_COOKIE, OpenError as SessionOpenError, SessionLimits, Sessions,
};

/// Longest bearer token looked at; anything longer is refused without hashing it.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where principals come from, as the flags give them.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--auth-file`.
    pub auth_file: Option<PathBuf>,
    /// `--jwt-key`.
    pub jwt_key: Option<PathBuf>,
    /// `--jwt-issuer` / `--jwt-audience`.
    pub jwt_expected: JwtExpected,
    /// Whether `--tls-client-ca` makes every client present a verified certificate.
    pub client_certificates: bool,
}

/// Turns a request's credentials into a principal.
pub struct Authenticator {
    mode: Mode,
}

enum Mode {
    Open,
    Required(Box<Required>),
}

struct Required {
    tokens: Vec<FilePrincipal>,
    by_name: HashMap<Arc<str>, FilePrincipal>,
    jwt: Option<JwtVerifier>,
    /// mTLS with no other source: a verified certificate is enough, for everything.
    certificate_is_admin: bool,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Open => f.write_str("Authenticator(open)"),
            Mode::Required(required) => write!(
                f,
                "Authenticator({} principals, jwt: {})",
                required.tokens.len(),
                required.jwt.is_some()
            ),
        }
    }
}

/// Why a request could not be authenticated; the text goes to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated(pub String);

impl Authenticator {
    /// Loads the sources; the error names the flag at fault.
    pub fn load(sources: &Sources) -> Result<Self, (&'static str, String)> {
        let tokens = match &sources.auth_file {
            Some(path) => file::load(path).map_err(|e| ("--auth-file", e))?,
            None => Vec::new(),
        };
        let jwt = match &sources.jwt_key {
            Some(path) => {
                Some(JwtVerifier::load(path, &sources.jwt_expected).map_err(|e| ("--jwt-key", e))?)
            }
            None => None,
        };
        if !sources.client_certificates
            && let Some(p) = tokens.iter().find(|p| p.token_sha256.is_none())
        {
            return Err((
                "--auth-file",
                format!(
                    "principal {:?} has no token_sha256, so only a client certificate could sign it in, and --tls-client-ca is not set",
                    p.name
                ),
            ));
        }
        if sources.auth_file.is_none() && jwt.is_none() && !sources.client_certificates {
            return Ok(Self { mode: Mode::Open });
        }
        let by_name = tokens.iter().map(|p| (p.name.clone(), p.clone())).collect();
        Ok(Self {
            mode: Mode::Required(Box::new(Required {
                certificate_is_admin: sources.client_certificates
                    && sources.auth_file.is_none()
                    && jwt.is_none(),
                tokens,
                by_name,
                jwt,
            })),
        })
    }

    /// An authenticator with no authentication: everyone is allowed everything.
    pub fn open() -> Self {
        Self { mode: Mode::Open }
    }

    /// Whether callers must authenticate.
    pub fn is_required(&self) -> bool {
        matches!(self.mode, Mode::Required(_))
    }

    /// The principal behind a request's `authorization` header or, without one, its
    /// verified client certificate's `subject`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        subject: Option<&str>,
    ) -> Result<Principal, Unauthenticated> {
        let Mode::Required(required) = &self.mode else {
            return Ok(Principal::open());
        };
        let Required {
            tokens,
            by_name,
            jwt,
            certificate_is_admin,
        } = required.as_ref();
        let refuse = |why: &str| Err(Unauthenticated(why.to_owned()));
        match bearer(headers) {
            Bearer::Token(token) => {
                if let Some(principal) = by_token(tokens, token) {
                    return Ok(principal);
                }
                match jwt {
                    Some(verifier) if looks_like_jwt(token) => {
                        verifier.verify(token).map_err(Unauthenticated)
                    }
                    _ => refuse("the bearer token is not known to this server"),
                }
            }
            Bearer::Malformed(why) => refuse(why),
            Bearer::Absent => match subject {
                Some(subject) if *certificate_is_admin => Ok(Principal::new(
                    subject,
                    Arc::from([Permission::Admin]),
                    Credential::Certificate,
                    None,
                )),
                Some(subject) => match by_name.get(subject) {
                    Some(p) => Ok(Principal::new(
                        p.name.clone(),
                        p.grants.clone(),
                        Credential::Certificate,
                        None,
                    )
                    .with_slot_limits(p.limits)
                    .with_quotas(p.quotas)),
                    None => Err(Unauthenticated(format!(
                        "no principal in the auth file is named like the client certificate's subject {subject:?}, and no bearer token was sent"
                    ))),
                },
                None => refuse(
                    "this server requires a token: send the metadata `authorization: Bearer <token>`",
                ),
            },
        }
    }
}

enum Bearer<'a> {
    Absent,
    Token(&'a str),
    Malformed(&'static str),
}

fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Bearer::Absent;
    };
    if value.len() > MAX_TOKEN_BYTES {
        return Bearer::Malformed("the authorization metadata is too long");
    }
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed("the authorization metadata is not printable ASCII");
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim())
        }
        _ => Bearer::Malformed("the authorization metadata must be `Bearer <token>`"),
    }
}

/// Compares the token's hash with every principal's, each in constant time, so neither the
/// answer's timing nor an early exit tells how close a guess was.
fn by_token(principals: &[FilePrincipal], token: &str) -> Option<Principal> {
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for principal in principals {
        if let Some(expected) = &principal.token_sha256
            && bool::from(expected.ct_eq(&hash))
        {
            found = Some(principal);
        }
    }
    found.map(|p| {
        Principal::new(p.name.clone(), p.grants.clone(), Credential::Token, None)
            .with_slot_limits(p.limits)
            .with_quotas(p.quotas)
    })
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
/// The SHA-256 of a token in hex, as the auth file wants it.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests;
