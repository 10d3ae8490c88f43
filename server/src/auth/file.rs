//! The `--auth-file`: a TOML list of principals, each with the SHA-256 of its token (never
//! the token itself) and the permissions it is allowed.
//!
//! ```toml
//! [[principal]]
//! name = "dashboard"
//! token_sha256 = "<hex sha-256 of the token>"
//! allow = ["subscribe:R*", "group:team-*", "stats", "topics"]
//! # optional: this principal's share of the stream slots (default: --principal-max-*)
//! limits = { subscriptions = 64, publish_streams = 4, watchers = 16 }
//! # optional: its rate quotas, per second (default: --quota-*; 0 is none)
//! quotas = { publish_records = 1000, publish_bytes = 1048576, read_records = 5000 }
//! ```
//!
//! A principal without `token_sha256` can only sign in with a client certificate whose
//! subject is its name (mutual TLS).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::permission::Permission;
use super::principal::{QuotaOverrides, SlotLimits};

/// Largest auth file read; far above any real list of principals.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One principal of the file, checked.
#[derive(Debug, Clone)]
pub struct FilePrincipal {
    /// Its name, as logs and errors show it.
    pub name: Arc<str>,
    /// SHA-256 of its bearer token, if it has one.
    pub token_sha256: Option<[u8; 32]>,
    /// What it may do.
    pub grants: Arc<[Permission]>,
    /// Its own share of the stream slots.
    pub limits: SlotLimits,
    /// Its own rate quotas.
    pub quotas: QuotaOverrides,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    principal: Vec<RawPrincipal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    name: String,
    token_sha256: Option<String>,
    allow: Vec<String>,
    #[serde(default)]
    limits: SlotLimits,
    #[serde(default)]
    quotas: QuotaOverrides,
}

/// Reads and checks the auth file; the error says which principal and field is wrong.
pub fn load(path: &Path) -> Result<Vec<FilePrincipal>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{} is {size} bytes, more than the {MAX_FILE_BYTES} an auth file may have",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses and checks the text of an auth file.
pub fn parse(text: &str) -> Result<Vec<FilePrincipal>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if raw.principal.is_empty() {
        return Err("no [[principal]] entries: nobody could sign in".into());
    }
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    raw.principal
        .into_iter()
        .enumerate()
        .map(|(index, p)| {
            let at = format!("principal {} ({:?})", index + 1, p.name);
            if p.name.trim().is_empty() {
                return Err(format!("{at}: name must not be empty"));
            }
            if !names.insert(p.name.clone()) {
                return Err(format!("{at}: the name appears twice"));
            }
            let token_sha256 = p
                .token_sha256
                .as_deref()
                .map(|hex| sha256_hex(hex).map_err(|e| format!("{at}: token_sha256 {e}")))
                .transpose()?;
            if let Some(hash) = token_sha256
                && !hashes.insert(hash)
            {
                return Err(format!("{at}: token_sha256 is another principal's too"));
            }
            let grants = p
                .allow
                .iter()
                .map(|s| s.parse::<Permission>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{at}: allow: {e}"))?;
            Ok(FilePrincipal {
                name: p.name.into(),
                token_sha256,
                grants: grants.into(),
                limits: p.limits,
                quotas: checked_quotas(p.quotas).map_err(|e| format!("{at}: quotas: {e}"))?,
            })
        })
        .collect()
}

/// Rates are finite and not negative.
fn checked_quotas(quotas: QuotaOverrides) -> Result<QuotaOverrides, &'static str> {
    let rates = [
        quotas.publish_records,
        quotas.publish_bytes,
        quotas.read_records,
        quotas.read_bytes,
    ];
    if rates
        .into_iter()
        .flatten()
        .any(|r| !r.is_finite() || r < 0.0)
    {
        return Err("a rate must be a number, 0 (none) or more");
    }
    Ok(quotas)
}

fn sha256_hex(text: &str) -> Result<[u8; 32], &'static str> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut hash)
        .map_err(|_| "must be 64 hex digits: the SHA-256 of the token (sha256sum prints it)")?;
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn reads_the_documented_shape() {
        let text = format!(
            "[[principal]]\nname = \"dashboard\"\ntoken_sha256 = \"{HASH}\"\nallow = [\"subscribe:R*\", \"group:team-*\", \"stats\", \"topics\"]\n"
        );
        let principals = parse(&text).expect("parses");
        assert_eq!(principals.len(), 1);
        assert_eq!(&*principals[0].name, "dashboard");
        assert_eq!(principals[0].grants.len(), 4);
        assert_eq!(principals[0].token_sha256.map(|h| h[0]), Some(0x9f));
    }

    #[test]
    fn reads_a_principals_own_slot_limits() {
        let text = format!(
            "[[principal]]\nname = \"ci\"\ntoken_sha256 = \"{HASH}\"\nallow = [\"stats\"]\nlimits = {{ subscriptions = 3, watchers = 0 }}\n"
        );
        let principals = parse(&text).expect("valid");
        assert_eq!(
            principals[0].limits,
            SlotLimits {
                subscriptions: Some(3),
                publish_streams: None,
                watchers: Some(0),
            }
        );
        let unknown = text.replace("watchers", "watches");
        let error = parse(&unknown).expect_err("an unknown limit");
        assert!(error.contains("watches"), "{error}");
    }

    #[test]
    fn refuses_what_would_be_a_silent_hole() {
        let one = |body: &str| format!("[[principal]]\n{body}\n");
        for (text, says) in [
            (String::new(), "no [[principal]]"),
            (
                one("name = \"a\"\ntoken = \"secret\"\nallow = []"),
                "unknown field",
            ),
            (
                one(&format!(
                    "name = \"a\"\ntoken_sha256 = \"{HASH}x\"\nallow = []"
                )),
                "64 hex",
            ),
            (
                one("name = \"a\"\ntoken_sha256 = \"abc\"\nallow = []"),
                "64 hex",
            ),
            (
                one(&format!(
                    "name = \"a\"\ntoken_sha256 = \"{HASH}\"\nallow = [\"read:*\"]"
                )),
                "allow",
            ),
            (
                one(&format!(
                    "name = \"\"\ntoken_sha256 = \"{HASH}\"\nallow = []"
                )),
                "empty",
            ),
            (
                format!(
                    "{}{}",
                    one(&format!(
                        "name = \"a\"\ntoken_sha256 = \"{HASH}\"\nallow = []"
                    )),
                    one(&format!(
                        "name = \"b\"\ntoken_sha256 = \"{HASH}\"\nallow = []"
                    ))
                ),
                "another principal",
            ),
            (
                format!(
                    "{}{}",
                    one("name = \"a\"\nallow = []"),
                    one("name = \"a\"\nallow = []")
                ),
                "twice",
            ),
        ] {
            let error = parse(&text).expect_err(&text);
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
