//! TLS on the one port (`--tls-cert`, `--tls-key`, `--tls-client-ca`), with rustls. ALPN
//! offers `h2` and `http/1.1`, so gRPC, grpc-web and the dashboard share the port over TLS
//! exactly as they do in plain text.
//!
//! - this module: reading the PEM files into a rustls [`ServerConfig`] — at start-up, where a
//!   bad file stops the server with the flag and the file named, and on every reload;
//! - [`watch`] (`reload.rs`): re-reads the files when they change or on SIGHUP. tonic's own
//!   `ServerTlsConfig` is fixed for the life of the server, which is why the TLS side of the
//!   port is built here rather than by tonic;
//! - [`incoming`] (`incoming.rs`): accepts TCP, runs each handshake in a task of its own,
//!   timed and bounded, and hands finished streams to tonic;
//! - [`client_subject`] (`subject.rs`): the name in a verified client certificate, for the
//!   authentication layer.

mod incoming;
mod reload;
mod subject;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

pub use incoming::{Incoming, incoming};
pub use reload::watch;

/// The port's current TLS configuration, replaced when its files change.
pub type Configs = tokio::sync::watch::Receiver<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>;
pub use subject::{client_subject, subject_of};

/// The flag of the certificate chain.
pub const CERT_FLAG: &str = "--tls-cert";
/// The flag of the private key.
pub const KEY_FLAG: &str = "--tls-key";
/// The flag of the client CA bundle.
pub const CLIENT_CA_FLAG: &str = "--tls-client-ca";

/// Largest PEM file read. A chain or a CA bundle is a few KiB (the whole Mozilla bundle is
/// about 220 KiB); anything much larger is a wrong path, and is refused rather than read.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// The PEM files TLS is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// With mutual TLS: the CAs a client certificate must be signed by.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Each file, with the flag that names it.
    pub fn each(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            (CERT_FLAG, self.cert.as_path()),
            (KEY_FLAG, self.key.as_path()),
        ]
        .into_iter()
        .chain(self.client_ca.as_deref().map(|ca| (CLIENT_CA_FLAG, ca)))
    }
}

/// TLS as configured: the files, how often they are checked for changes, and what they held
/// when the settings were resolved — read once, so that a bad file stops the server before
/// anything starts and [`watch`] serves that same config without reading them again.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The PEM files.
    pub files: TlsFiles,
    /// How often the files' metadata is compared with what was last loaded.
    pub reload_interval: Duration,
    loaded: Loaded,
    seen: reload::Fingerprint,
}

impl TlsSettings {
    /// Reads `files` now; the config for the first connections.
    pub fn load(files: TlsFiles, reload_interval: Duration) -> Result<Self, LoadError> {
        // Taken before the load: a change while loading is seen, and loaded, at the first poll.
        let seen = reload::Fingerprint::of(&files);
        let loaded = load(&files)?;
        Ok(Self {
            files,
            reload_interval,
            loaded,
            seen,
        })
    }
}

/// Why a set of TLS files cannot be served: the flag and the file at fault, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {}: {message}", path.display())]
pub struct LoadError {
    /// The flag naming the file.
    pub flag: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl LoadError {
    fn new(flag: &'static str, path: &Path, message: impl ToString) -> Self {
        Self {
            flag,
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// A config ready for new connections, and a line for the log saying what it presents.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rustls config.
    pub config: Arc<ServerConfig>,
    /// The leaf certificate's subject, serial and expiry, and whether clients need one.
    pub description: String,
}

/// Reads and checks every file: certificates parse, the key fits the leaf certificate, the
/// client CA bundle holds at least one usable CA.
pub fn load(files: &TlsFiles) -> Result<Loaded, LoadError> {
    // One provider, named: with several rustls providers linked into one binary (a
    // dependency may enable another), rustls cannot pick a process default by itself.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(CERT_FLAG, &files.cert)?;
    let key = private_key(&files.key)?;
    let leaf = describe(&files.cert, &chain[0])?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LoadError::new(CERT_FLAG, &files.cert, e))?;
    let builder = match &files.client_ca {
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
        None => builder.with_no_client_auth(),
    };
    // rustls checks here that the key is the leaf certificate's: a cert replaced without its
    // key (or the other way round) fails the load instead of every handshake.
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        let cert = files.cert.display();
        LoadError::new(KEY_FLAG, &files.key, format!("not usable with {cert}: {e}"))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let clients = match &files.client_ca {
        Some(path) => format!("client certificates signed by {} required", path.display()),
        None => "no client certificates".to_owned(),
    };
    Ok(Loaded {
        config: Arc::new(config),
        description: format!("{leaf}; {clients}"),
    })
}

/// The whole file, refused past [`MAX_PEM_BYTES`]; one read, so that a file being replaced is
/// seen either before or after, and a torn read fails to parse rather than half-loading.
fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| LoadError::new(flag, path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::new(flag, path, e))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(LoadError::new(
            flag,
            path,
            format!("larger than {MAX_PEM_BYTES} bytes; not a PEM certificate or key"),
        ));
    }
    Ok(bytes)
}

/// Every CERTIFICATE block of a PEM file; at least one.
fn certificates(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let bytes = read_pem(flag, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::new(flag, path, format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(LoadError::new(flag, path, "no CERTIFICATE block in it"));
    }
    Ok(chain)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    let bytes = read_pem(KEY_FLAG, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let message = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block (PKCS#8, RSA or EC) in it".to_owned()
            }
            other => format!("not valid PEM: {other}"),
        };
        LoadError::new(KEY_FLAG, path, message)
    })
}

/// Who the leaf certificate names, its serial and its expiry; a warning in the log if it has
/// already expired (clients will refuse it, and the operator should know why).
fn describe(path: &Path, leaf: &CertificateDer<'_>) -> Result<String, LoadError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| LoadError::new(CERT_FLAG, path, format!("not an X.509 certificate: {e}")))?;
    let validity = parsed.validity();
    if !validity.is_valid() {
        tracing::warn!(
            file = %path.display(),
            not_before = %validity.not_before,
            not_after = %validity.not_after,
            "the TLS certificate is not valid now; clients will refuse it"
        );
    }
    Ok(format!(
        "certificate {:?} (serial {}, expires {})",
        subject_of(leaf).unwrap_or_default(),
        parsed.raw_serial_as_string(),
        validity.not_after
    ))
}

/// A verifier that requires a client certificate signed by one of the CAs in `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, LoadError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(CLIENT_CA_FLAG, path)? {
        roots
            .add(ca)
            .map_err(|e| LoadError::new(CLIENT_CA_FLAG, path, format!("not a usable CA: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| LoadError::new(CLIENT_CA_FLAG, path, e))
}

#[cfg(test)]
mod tests;
