//! The connection to the server: the flags that say where and how ([`Connection`], the
//! global flags of `streamgate` and `streamgate-bench`), and the [`Channel`] they open:
//! `http://` in plain text, `https://` over TLS trusting `--tls-ca` (or, without it, the
//! system's CAs, else the Mozilla roots built in), presenting `--tls-cert`/`--tls-key` to a
//! server that wants client certificates. The result is a plain [`Channel`], so that callers
//! can wrap it (an interceptor, say) as they would any other; [`gateway`] makes the
//! EventGateway client of it.
//!
//! Errors keep the exit codes of [`Exit`](crate::Exit): a flag or a file that cannot be used
//! is the command line's fault (2); a server that cannot be reached — a TLS handshake that
//! fails included, with a message saying it was TLS and what to check — is 3.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use streamgate::auth::BearerToken;
use streamgate::proto::event_gateway_client::EventGatewayClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Failure;
use crate::failure::source_chain;

/// The gateway client every subcommand gets: sends the `--token`, if any, on each call.
pub type Client = EventGatewayClient<InterceptedService<Channel, BearerToken>>;

/// The global connection flags (flattened into each program's command line).
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The streamgate server to talk to.
    #[arg(
        long,
        global = true,
        env = "STREAMGATE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,

    /// Bearer token for a server that requires one (sent as `authorization: Bearer ...`).
    /// Prefer the environment variable: a flag shows in process listings.
    #[arg(long, global = true, env = "STREAMGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// With an https:// --server: PEM CA certificate(s) to trust instead of the system's.
    #[arg(long, global = true, env = "STREAMGATE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate to present, for a server that requires one (mutual TLS).
    #[arg(long, global = true, env = "STREAMGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "STREAMGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl Connection {
    /// The TLS flags.
    fn tls_options(&self) -> TlsOptions {
        TlsOptions {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }

    /// A connected channel to `--server`, and the `--token` to send on it.
    pub async fn open(&self) -> Result<(Channel, BearerToken), Failure> {
        let token = BearerToken::optional(self.token.as_deref())
            .map_err(|e| Failure::usage(format!("--token / STREAMGATE_TOKEN: {e}")))?;
        Ok((channel(&self.server, &self.tls_options()).await?, token))
    }
}

/// The EventGateway client over `channel`, sending `token`.
pub fn gateway(channel: Channel, token: BearerToken) -> Client {
    EventGatewayClient::with_interceptor(channel, token).max_decoding_message_size(usize::MAX)
}

/// How long connecting (TCP and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest PEM file read: CA bundles are a few hundred KiB at most.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// The TLS flags.
#[derive(Debug, Clone, Default)]
struct TlsOptions {
    /// PEM CA(s) to trust instead of the system's.
    ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require one.
    cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    key: Option<PathBuf>,
}

impl TlsOptions {
    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// What one stream may have in flight towards this process (HTTP/2 flow control).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// What all streams of the connection together may have in flight.
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// A connected channel to `server`.
async fn channel(server: &str, tls: &TlsOptions) -> Result<Channel, Failure> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| Failure::usage(format!("--server {server:?} is not a valid URL: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        // HTTP/2's default 64 KiB window lets a streaming server send only that much before
        // it waits for this process to read and announce more: a Subscribe of small records
        // then stalls every few hundred records on a round trip through two busy processes.
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let https = endpoint.uri().scheme_str() == Some("https");
    let endpoint = match (https, tls.any()) {
        (true, _) => with_tls(endpoint, tls)?,
        (false, true) => {
            return Err(Failure::usage(format!(
                "--tls-ca, --tls-cert and --tls-key need an https:// --server, got {server:?}"
            )));
        }
        (false, false) => endpoint,
    };
    endpoint
        .connect()
        .await
        .map_err(|e| unreachable(server, &e))
}

/// The system's CAs when it has any, else the Mozilla roots built into the binary (a
/// minimal container has no CA bundle); `--tls-ca` replaces both.
#[derive(Debug, Clone, Copy)]
enum Roots {
    System,
    BuiltIn,
}

fn with_tls(endpoint: Endpoint, tls: &TlsOptions) -> Result<Endpoint, Failure> {
    let settings_error =
        |e: tonic::transport::Error| Failure::usage(format!("TLS settings: {}", source_chain(&e)));
    match endpoint
        .clone()
        .tls_config(client_config(tls, Roots::System)?)
    {
        Ok(endpoint) => Ok(endpoint),
        // tonic refuses an empty system store; any other problem shows again below.
        Err(_) if tls.ca.is_none() => endpoint
            .tls_config(client_config(tls, Roots::BuiltIn)?)
            .map_err(settings_error),
        Err(e) => Err(settings_error(e)),
    }
}

/// Why connecting failed, as exit code 3: a TLS failure says so, anything else is the usual
/// "is it running?".
fn unreachable(server: &str, error: &tonic::transport::Error) -> Failure {
    let message = match tls_failure(error) {
        Some(tls) => format!("TLS handshake with {server} failed: {tls}"),
        None => format!(
            "cannot reach the streamgate server at {server}: {} (is it running? see --server / STREAMGATE_SERVER)",
            source_chain(error)
        ),
    };
    Failure::unreachable(message)
}

/// The TLS error somewhere in `error`'s causes, with a hint at what to check. tokio-rustls
/// reports a handshake error as an `io::Error` wrapping the rustls error; an alert read
/// after the handshake (TLS 1.3 servers refuse a client certificate then) comes as an
/// `InvalidData` `io::Error` carrying only the rustls error's text.
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(format!("{tls}{}", hint(tls)));
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(format!("{tls}{}", hint(tls)));
            }
            if io.kind() == std::io::ErrorKind::InvalidData {
                let text = inner.to_string();
                return Some(format!("{text}{}", hint_for_alert_text(&text)));
            }
        }
        cause = current.source();
    }
    None
}

/// The hint of an alert known only by its text ("received fatal alert: CertificateRequired").
fn hint_for_alert_text(text: &str) -> &'static str {
    let client_certificate = ["CertificateRequired", "BadCertificate", "UnknownCA"];
    if client_certificate.iter().any(|alert| text.contains(alert)) {
        CLIENT_CERTIFICATE_HINT
    } else {
        ""
    }
}

const CLIENT_CERTIFICATE_HINT: &str =
    " (the server wants a client certificate it trusts: see --tls-cert and --tls-key)";

fn hint(error: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription, CertificateError, Error};
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the server's certificate is not signed by a CA this client trusts: pass that CA with --tls-ca)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the server's certificate does not name the host of --server)",
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => " (the server's certificate has expired)",
        Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::HandshakeFailure,
        ) => CLIENT_CERTIFICATE_HINT,
        Error::InvalidMessage(_) => " (is the server serving TLS? try an http:// --server)",
        _ => "",
    }
}

fn client_config(tls: &TlsOptions, roots: Roots) -> Result<ClientTlsConfig, Failure> {
    let config = match &tls.ca {
        Some(path) => {
            let pem = read_pem("--tls-ca", path)?;
            let found = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
            if !matches!(&found, Ok(certificates) if !certificates.is_empty()) {
                return Err(bad_file("--tls-ca", path, "no PEM CERTIFICATE in it"));
            }
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
        None => match roots {
            Roots::System => ClientTlsConfig::new().with_native_roots(),
            Roots::BuiltIn => ClientTlsConfig::new().with_webpki_roots(),
        },
    };
    Ok(match identity(tls)? {
        Some(identity) => config.identity(identity),
        None => config,
    })
}

/// `--tls-cert` and `--tls-key`, both or neither.
fn identity(tls: &TlsOptions) -> Result<Option<Identity>, Failure> {
    let (cert_path, key_path) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(Failure::usage("--tls-cert needs --tls-key")),
        (None, Some(_)) => return Err(Failure::usage("--tls-key needs --tls-cert")),
    };
    let cert = read_pem("--tls-cert", cert_path)?;
    if !matches!(CertificateDer::pem_slice_iter(&cert).next(), Some(Ok(_))) {
        return Err(bad_file(
            "--tls-cert",
            cert_path,
            "no PEM CERTIFICATE in it",
        ));
    }
    let key = read_pem("--tls-key", key_path)?;
    if PrivateKeyDer::from_pem_slice(&key).is_err() {
        return Err(bad_file("--tls-key", key_path, "no PEM PRIVATE KEY in it"));
    }
    Ok(Some(Identity::from_pem(cert, key)))
}

fn read_pem(flag: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    let file = std::fs::File::open(path).map_err(|e| bad_file(flag, path, &e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad_file(flag, path, &e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(bad_file(flag, path, "too large for a PEM file"));
    }
    Ok(bytes)
}

fn bad_file(flag: &str, path: &Path, why: &str) -> Failure {
    Failure::usage(format!("{flag} {}: {why}", path.display()))
}
