//! Authentication decisions, without a server.

use std::io::Write;

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::auth::permission::Need;

fn file_with(body: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(body.as_bytes()).expect("write");
    file
}

fn authenticator(
    auth_file: &str,
    client_certificates: bool,
) -> (Authenticator, tempfile::NamedTempFile) {
    let file = file_with(auth_file);
    let sources = Sources {
        auth_file: Some(file.path().to_owned()),
        client_certificates,
        ..Sources::default()
    };
    (Authenticator::load(&sources).expect("loads"), file)
}

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(value).expect("header"),
    );
    headers
}

fn dashboard_file() -> String {
    format!(
        "[[principal]]\nname = \"dashboard\"\ntoken_sha256 = \"{}\"\nallow = [\"stats\"]\n\n[[principal]]\nname = \"CN=ops\"\nallow = [\"admin\"]\n",
        token_sha256_hex("s3cret")
    )
}

#[test]
fn no_source_means_open_and_everyone_is_admin() {
    let auth = Authenticator::load(&Sources::default()).expect("loads");
    assert!(!auth.is_required());
    let who = auth.authenticate(&HeaderMap::new(), None).expect("open");
    assert!(who.allows(&Need::Admin));
}

#[test]
fn a_known_token_signs_in_its_principal_and_nothing_else_does() {
    let (auth, _file) = authenticator(&dashboard_file(), true);
    let who = auth
        .authenticate(&headers("Bearer s3cret"), None)
        .expect("known");
    assert_eq!(who.name(), "dashboard");
    assert!(who.allows(&Need::Stats) && !who.allows(&Need::Topics));
    assert_eq!(
        auth.authenticate(&headers("bearer s3cret"), None)
            .map(|p| p.credential()),
        Ok(Credential::Token)
    );
    for refused in [
        "Bearer s3cre",
        "Bearer S3CRET",
        "Basic s3cret",
        "Bearer ",
        "s3cret",
    ] {
        assert!(
            auth.authenticate(&headers(refused), None).is_err(),
            "{refused:?} signed in"
        );
    }
    assert!(auth.authenticate(&HeaderMap::new(), None).is_err());
    let long = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
    assert!(auth.authenticate(&headers(&long), None).is_err());
}

#[test]
fn a_certificate_signs_in_the_principal_named_like_its_subject() {
    let (auth, _file) = authenticator(&dashboard_file(), true);
    let who = auth
        .authenticate(&HeaderMap::new(), Some("CN=ops"))
        .expect("known subject");
    assert_eq!(who.credential(), Credential::Certificate);
    assert!(who.allows(&Need::Admin));
    assert!(
        auth.authenticate(&HeaderMap::new(), Some("CN=stranger"))
            .is_err()
    );
    // A token wins over the certificate: the caller chose to present it.
    let who = auth
        .authenticate(&headers("Bearer s3cret"), Some("CN=ops"))
        .expect("token");
    assert_eq!(who.name(), "dashboard");
}

#[test]
fn a_certificate_only_principal_needs_client_certificates() {
    let file = file_with(&dashboard_file());
    let sources = Sources {
        auth_file: Some(file.path().to_owned()),
        ..Sources::default()
    };
    let (flag, message) = Authenticator::load(&sources).expect_err("refused");
    assert_eq!(flag, "--auth-file");
    assert!(message.contains("--tls-client-ca"), "{message}");
}

#[test]
fn mutual_tls_alone_makes_every_verified_client_admin() {
    let sources = Sources {
        client_certificates: true,
        ..Sources::default()
    };
    let auth = Authenticator::load(&sources).expect("loads");
    assert!(auth.is_required());
    let who = auth
        .authenticate(&HeaderMap::new(), Some("CN=any"))
        .expect("verified");
    assert!(who.allows(&Need::Admin));
    assert!(auth.authenticate(&HeaderMap::new(), None).is_err());
}

/// The compose file's auth file parses, and its documented tokens sign in as documented.
#[test]
fn the_development_auth_file_matches_the_readme() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/dev-auth.toml");
    let sources = Sources {
        auth_file: Some(path),
        ..Sources::default()
    };
    let auth = Authenticator::load(&sources).expect("deploy/dev-auth.toml loads");
    let admin = auth
        .authenticate(&headers("Bearer streamgate-dev-admin"), None)
        .expect("admin");
    assert!(admin.allows(&Need::Admin));
    let viewer = auth
        .authenticate(&headers("Bearer streamgate-dev-viewer"), None)
        .expect("viewer");
    assert!(viewer.allows(&Need::Stats) && !viewer.allows(&Need::Supplier));
}
