//! Auth files for tests: principals with known tokens, written to a temporary file that
//! lives as long as the value.

use std::fmt::Write as _;
use std::path::Path;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use streamgate_server::Settings;
use streamgate_server::settings::{AuthSources, Authenticator};

/// The token of the `test-admin` principal every [`AuthFile`] has; the harness's own
/// calls (waiting for a topic, say) use it.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// One principal: name, token, permissions.
pub type TestPrincipal<'a> = (&'a str, &'a str, &'a [&'a str]);

/// An auth file on disk.
pub struct AuthFile {
    file: tempfile::NamedTempFile,
}

impl AuthFile {
    /// A file with `principals` and `test-admin` (token [`ADMIN_TOKEN`], `admin`).
    pub fn new(principals: &[TestPrincipal<'_>]) -> Self {
        let mut text = String::new();
        let admin: TestPrincipal<'_> = ("test-admin", ADMIN_TOKEN, &["admin"]);
        for (name, token, allow) in principals.iter().chain(std::iter::once(&admin)) {
            let allow: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
            let _ = write!(
                text,
                "[[principal]]\nname = {name:?}\ntoken_sha256 = \"{}\"\nallow = [{}]\n\n",
                hex::encode(Sha256::digest(token.as_bytes())),
                allow.join(", ")
            );
        }
        let file = tempfile::NamedTempFile::new().expect("temp auth file");
        std::fs::write(file.path(), text).expect("write auth file");
        Self { file }
    }

    /// Adds a principal without a token: only a client certificate whose subject is `name`
    /// signs it in (mutual TLS).
    pub fn with_certificate_principal(self, name: &str, allow: &[&str]) -> Self {
        let allow: Vec<String> = allow.iter().map(|a| format!("{a:?}")).collect();
        let mut text = std::fs::read_to_string(self.path()).expect("read auth file");
        let _ = write!(
            text,
            "[[principal]]\nname = {name:?}\nallow = [{}]\n\n",
            allow.join(", ")
        );
        std::fs::write(self.path(), text).expect("write auth file");
        self
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Authenticates with this file, as `--auth-file` does (with client certificates too
    /// when `settings` serve mutual TLS, as `--tls-client-ca` does).
    pub fn apply(&self, settings: &mut Settings) {
        settings.authenticator = authenticator(self.sources(settings));
    }

    /// The sources `--auth-file` with this file makes, beside the TLS of `settings`; a test
    /// adds a JWT key to them.
    pub fn sources(&self, settings: &Settings) -> AuthSources {
        AuthSources {
            auth_file: Some(self.path().to_owned()),
            client_certificates: settings
                .tls
                .as_ref()
                .is_some_and(|tls| tls.files.client_ca.is_some()),
            ..AuthSources::default()
        }
    }

    /// Where it is, as a flag value.
    pub fn arg(&self) -> &str {
        self.file.path().to_str().expect("temp paths are UTF-8")
    }
}

/// An authenticator over `sources`, as the server loads it at start-up.
pub fn authenticator(sources: AuthSources) -> Arc<Authenticator> {
    let loaded = Authenticator::load(&sources)
        .unwrap_or_else(|(flag, message)| panic!("test auth sources load: {flag}: {message}"));
    Arc::new(loaded)
}
