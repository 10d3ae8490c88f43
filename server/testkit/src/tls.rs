//! Test certificates made at test time with rcgen — nothing secret is committed, nothing
//! expires in the repository: a CA, a server certificate for `localhost` and `127.0.0.1`,
//! client certificates, all written as PEM into a temporary directory that lives as long as
//! the [`TestTls`]; and tonic clients that trust them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use streamgate_server::Settings;
use streamgate_server::settings::{AuthSources, TlsFiles, TlsSettings};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The name the server certificates are issued for, and the one clients verify.
pub const SERVER_NAME: &str = "localhost";

/// A certificate authority whose key stays in memory.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    /// Its certificate, PEM.
    pub pem: String,
    /// Where that PEM is written.
    pub path: PathBuf,
}

/// A certificate and its key, as PEM text and as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate's file.
    pub cert: PathBuf,
    /// The key's file.
    pub key: PathBuf,
}

impl CertFiles {
    /// The identity a tonic client presents with this certificate.
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        let path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&path, &pem).expect("write the CA");
        Self {
            params,
            key,
            pem,
            path,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, written as `dir/<stem>.pem` and
    /// `dir/<stem>-key.pem`.
    pub fn server_cert(&self, dir: &Path, stem: &str) -> CertFiles {
        let mut params =
            CertificateParams::new(vec![SERVER_NAME.to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, dir, stem)
    }

    /// A client certificate whose subject Common Name is `common_name`.
    pub fn client_cert(&self, dir: &Path, common_name: &str) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, dir, &format!("client-{common_name}"))
    }

    fn sign(&self, params: CertificateParams, dir: &Path, stem: &str) -> CertFiles {
        let key = KeyPair::generate().expect("key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert_pem = params.signed_by(&key, &issuer).expect("signed").pem();
        let key_pem = key.serialize_pem();
        let (cert, key) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}-key.pem")),
        );
        std::fs::write(&cert, &cert_pem).expect("write the certificate");
        std::fs::write(&key, &key_pem).expect("write the key");
        CertFiles {
            cert_pem,
            key_pem,
            cert,
            key,
        }
    }
}

/// A server's TLS files and what its clients need: a server CA and certificate, and for
/// mutual TLS a client CA and one client certificate (`test-client`).
pub struct TestTls {
    /// The directory everything is written to; removed on drop.
    pub dir: TempDir,
    /// The CA of the server certificate.
    pub ca: TestCa,
    /// The server's certificate (`--tls-cert`, `--tls-key`).
    pub server: CertFiles,
    /// With mutual TLS: the CA clients must be signed by (`--tls-client-ca`).
    pub client_ca: Option<TestCa>,
    /// With mutual TLS: a good client certificate, CN `test-client`.
    pub client: Option<CertFiles>,
}

impl TestTls {
    /// TLS without client certificates.
    pub fn new() -> Self {
        let dir = TempDir::new().expect("temporary directory");
        let ca = TestCa::new(dir.path(), "server");
        let server = ca.server_cert(dir.path(), "server");
        Self {
            dir,
            ca,
            server,
            client_ca: None,
            client: None,
        }
    }

    /// Mutual TLS: clients need a certificate signed by [`TestTls::client_ca`].
    pub fn mutual() -> Self {
        let mut tls = Self::new();
        let client_ca = TestCa::new(tls.dir.path(), "client");
        tls.client = Some(client_ca.client_cert(tls.dir.path(), "test-client"));
        tls.client_ca = Some(client_ca);
        tls
    }

    /// Serves these files: TLS settings as `--tls-cert`, `--tls-key` (and
    /// `--tls-client-ca`) make them; with mutual TLS, a client certificate signs a client in
    /// as admin until [`AuthFile::apply`](crate::AuthFile::apply) names principals.
    pub fn apply(&self, settings: &mut Settings) {
        let files = TlsFiles {
            cert: self.server.cert.clone(),
            key: self.server.key.clone(),
            client_ca: self.client_ca.as_ref().map(|ca| ca.path.clone()),
        };
        let reload_interval = Duration::from_secs(5);
        settings.tls = Some(TlsSettings::load(files, reload_interval).expect("test TLS loads"));
        if self.client_ca.is_some() {
            settings.authenticator = crate::auth::authenticator(AuthSources {
                client_certificates: true,
                ..AuthSources::default()
            });
        }
    }

    /// The server's flags for these files.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".to_owned(),
            path_arg(&self.server.cert),
            "--tls-key".to_owned(),
            path_arg(&self.server.key),
        ];
        if let Some(ca) = &self.client_ca {
            args.extend(["--tls-client-ca".to_owned(), path_arg(&ca.path)]);
        }
        args
    }

    /// How the harness's clients reach a server using these files.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca_pem: self.ca.pem.clone(),
            identity: self.client.clone(),
        }
    }
}

impl Default for TestTls {
    fn default() -> Self {
        Self::new()
    }
}

/// A path as a flag value.
pub fn path_arg(path: &Path) -> String {
    path.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// What a test client trusts and presents.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA (PEM) that the server's certificate must be signed by.
    pub ca_pem: String,
    /// The client certificate to present, if any.
    pub identity: Option<CertFiles>,
}

impl ClientTls {
    /// tonic's config: trust only `ca_pem`, verify the name `localhost`, present the identity.
    pub fn config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(SERVER_NAME);
        match &self.identity {
            Some(identity) => config.identity(identity.identity()),
            None => config,
        }
    }

    /// Connects to `addr` over TLS; the error is tonic's, for tests of refused handshakes.
    pub async fn channel(&self, addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(self.config())?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
    }
}
