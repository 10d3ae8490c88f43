//! JWT bearer tokens (`--jwt-key`): an HS256 secret, or an RSA or EC public key in PEM for
//! RS256/ES256 tokens. `sub` names the principal, `exp` is required and ends its streams,
//! and `scope` holds the permission strings of the auth file (space-separated, as OAuth
//! writes it, or a JSON array). `nbf` and `iat`, when present, are checked against the
//! server's clock with [`CLOCK_SKEW`] of leeway: a token valid only from tomorrow, or
//! issued in the future, is refused today. Every claim is checked arithmetic: no value
//! of `exp`, `nbf` or `iat` can make the verifier panic.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use super::permission::Permission;
use super::principal::{Credential, Principal};

/// Shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash.
const MIN_SECRET_BYTES: usize = 32;

/// How far `nbf` and `iat` may lie in the future: clocks of the issuer and the server
/// differ by a little. `exp` has no leeway (streams end exactly at it).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Checks JWTs against one key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// Which `iss` and `aud` a token must carry, when set.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// `--jwt-issuer`.
    pub issuer: Option<String>,
    /// `--jwt-audience`.
    pub audience: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    scope: Option<Scope>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scope {
    Text(String),
    List(Vec<String>),
}

impl JwtVerifier {
    /// Reads the key file: a PEM public key (RSA, then EC) or else an HS256 secret (a
    /// trailing newline is not part of it).
    pub fn load(path: &Path, expected: &Expected) -> Result<Self, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (key, algorithms) = if bytes.starts_with(b"-----BEGIN") {
            if let Ok(key) = DecodingKey::from_rsa_pem(&bytes) {
                (
                    key,
                    vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
                )
            } else if let Ok(key) = DecodingKey::from_ec_pem(&bytes) {
                (key, vec![Algorithm::ES256, Algorithm::ES384])
            } else {
                return Err(format!(
                    "{}: a PEM file, but not an RSA or EC public key",
                    path.display()
                ));
            }
        } else {
            let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "{}: an HS256 secret must have at least {MIN_SECRET_BYTES} bytes, this one has {}",
                    path.display(),
                    secret.len()
                ));
            }
            (DecodingKey::from_secret(secret), vec![Algorithm::HS256])
        };
        Ok(Self {
            key,
            validation: validation(algorithms, expected),
        })
    }

    /// The principal a token names, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
                _ => format!("the token is not valid: {e}"),
            })?
            .claims;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        not_in_the_future("nbf", "the token is not valid yet", claims.nbf, now)?;
        not_in_the_future("iat", "the token was issued in the future", claims.iat, now)?;
        let grants: Vec<Permission> = match claims.scope {
            None => Vec::new(),
            Some(Scope::Text(text)) => parse_scopes(text.split_whitespace()),
            Some(Scope::List(list)) => parse_scopes(list.iter().map(String::as_str)),
        };
        // An `exp` past what the clock can represent never expires in practice.
        let expires = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp));
        Ok(Principal::new(
            claims.sub,
            Arc::from(grants),
            Credential::Jwt,
            expires,
        ))
    }
}

/// Refuses a claim (seconds since the epoch) later than `now` plus [`CLOCK_SKEW`].
fn not_in_the_future(
    claim: &str,
    reason: &str,
    value: Option<u64>,
    now: Duration,
) -> Result<(), String> {
    match value {
        Some(at) if at > now.as_secs().saturating_add(CLOCK_SKEW.as_secs()) => Err(format!(
            "{reason} ({claim} {at} is ahead of the server's clock)"
        )),
        _ => Ok(()),
    }
}

fn validation(algorithms: Vec<Algorithm>, expected: &Expected) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // Streams end exactly at `exp`; calls are refused from then on, with no grace.
    validation.leeway = 0;
    match &expected.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &expected.issuer {
        validation.set_issuer(&[issuer]);
    }
    validation
}

/// Scopes that are not ours (an identity provider adds `openid`, say) grant nothing.
fn parse_scopes<'a>(scopes: impl Iterator<Item = &'a str>) -> Vec<Permission> {
    scopes.filter_map(|scope| scope.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::permission::Need;
    use jsonwebtoken::{EncodingKey, Header, encode};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier() -> JwtVerifier {
        JwtVerifier {
            key: DecodingKey::from_secret(SECRET),
            validation: validation(vec![Algorithm::HS256], &Expected::default()),
        }
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("encodes")
    }

    fn in_an_hour() -> u64 {
        streamgate::time::now_millis() as u64 / 1000 + 3600
    }

    #[test]
    fn scope_grants_the_permissions_it_names() {
        let jwt = token(
            serde_json::json!({"sub": "ci", "exp": in_an_hour(), "scope": "openid publish:R1 stats"}),
            SECRET,
        );
        let principal = verifier().verify(&jwt).expect("valid");
        assert_eq!(principal.name(), "ci");
        assert!(principal.allows(&Need::Publish("R1")));
        assert!(principal.allows(&Need::Stats));
        assert!(!principal.allows(&Need::Publish("R2")));
        assert!(principal.expires().is_some());
    }

    /// An ES256 token verified with the public key in PEM, as `--jwt-key` reads it; an HS256
    /// token made with the public key's bytes as a secret (the classic algorithm confusion)
    /// is refused.
    #[test]
    fn es256_tokens_verify_against_a_public_key_file() {
        let key = rcgen::KeyPair::generate().expect("P-256 key");
        let public = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(public.path(), key.public_key_pem()).expect("write");
        let verifier = JwtVerifier::load(public.path(), &Expected::default()).expect("EC key");
        let claims = serde_json::json!({"sub": "svc", "exp": in_an_hour(), "scope": ["topics"]});
        let signed = encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("private key"),
        )
        .expect("encodes");
        let principal = verifier.verify(&signed).expect("valid ES256");
        assert!(principal.allows(&Need::Topics));
        let confused = token(claims, key.public_key_pem().as_bytes());
        assert!(verifier.verify(&confused).is_err());
    }

    #[test]
    fn refuses_expired_forged_and_alg_none_tokens() {
        let v = verifier();
        let expired = token(serde_json::json!({"sub": "ci", "exp": 1_000_000}), SECRET);
        assert!(v.verify(&expired).expect_err("expired").contains("expired"));
        let forged = token(
            serde_json::json!({"sub": "ci", "exp": in_an_hour()}),
            b"another secret that is long enough!!",
        );
        assert!(v.verify(&forged).expect_err("forged").contains("signature"));
        // {"alg":"none"} with an empty signature.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjaSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(v.verify(none).is_err());
        let no_exp = token(serde_json::json!({"sub": "ci"}), SECRET);
        assert!(v.verify(&no_exp).is_err());
    }

    /// A token valid only from tomorrow, or issued tomorrow, is refused today; one whose
    /// `nbf` is a few seconds ahead (clock skew) is accepted.
    #[test]
    fn refuses_tokens_not_valid_yet_or_issued_in_the_future() {
        let v = verifier();
        let tomorrow = in_an_hour() + 23 * 3600;
        for claim in ["nbf", "iat"] {
            let early = token(
                serde_json::json!({"sub": "ci", "exp": tomorrow + 3600, claim: tomorrow}),
                SECRET,
            );
            let refused = v.verify(&early).expect_err("not valid yet");
            assert!(refused.contains(claim), "{refused}");
            let skewed = token(
                serde_json::json!({"sub": "ci", "exp": in_an_hour(), claim: in_an_hour() - 3590}),
                SECRET,
            );
            v.verify(&skewed).expect("ten seconds of skew is accepted");
        }
    }

    /// Claims at the ends of their range are refusals or far-future expiries, never a panic
    /// (an `exp` near 2^64 used to overflow the expiry's arithmetic).
    #[tokio::test]
    async fn extreme_claims_never_panic() {
        let v = verifier();
        let far = token(serde_json::json!({"sub": "ci", "exp": u64::MAX}), SECRET);
        let principal = v.verify(&far).expect("a far-future exp is valid");
        let stream = crate::auth::Expiring::new(
            futures::stream::empty::<Result<(), tonic::Status>>(),
            &principal,
        );
        drop(stream);
        for claims in [
            serde_json::json!({"sub": "ci", "exp": in_an_hour(), "nbf": u64::MAX}),
            serde_json::json!({"sub": "ci", "exp": in_an_hour(), "iat": u64::MAX}),
            serde_json::json!({"sub": "ci", "exp": -1}),
            serde_json::json!({"sub": "ci", "exp": 1e300}),
            serde_json::json!({"sub": "ci", "exp": in_an_hour(), "nbf": -5}),
        ] {
            assert!(
                v.verify(&token(claims.clone(), SECRET)).is_err(),
                "{claims}"
            );
        }
    }
}
