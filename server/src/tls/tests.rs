//! Unit tests of `tls`: loading good and bad files, and `client_subject` over a real
//! loopback handshake.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tonic::transport::server::Connected;

use super::*;

/// A CA and what it signs, as PEM.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let pem = params.self_signed(&key).expect("self-signed").pem();
    Ca { params, key, pem }
}

/// A leaf signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, params: CertificateParams) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

fn server_leaf(ca: &Ca) -> (String, String) {
    leaf(
        ca,
        CertificateParams::new(vec!["localhost".to_owned()]).expect("params"),
    )
}

fn client_leaf(ca: &Ca, dn: &[(DnType, &str)]) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in dn {
        params.distinguished_name.push(kind.clone(), *value);
    }
    leaf(ca, params)
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn files(dir: &TempDir, ca: &Ca, client_ca: Option<&Ca>) -> TlsFiles {
    let (cert, key) = server_leaf(ca);
    TlsFiles {
        cert: write(dir, "cert.pem", &cert),
        key: write(dir, "key.pem", &key),
        client_ca: client_ca.map(|ca| write(dir, "client-ca.pem", &ca.pem)),
    }
}

#[test]
fn loads_a_certificate_and_offers_h2_and_http1() {
    let dir = TempDir::new().expect("tempdir");
    let loaded = load(&files(&dir, &ca("test ca"), None)).expect("loads");
    assert_eq!(
        loaded.config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(
        loaded.description.contains("no client certificates"),
        "{}",
        loaded.description
    );
}

#[test]
fn names_the_flag_and_the_file_at_fault() {
    let dir = TempDir::new().expect("tempdir");
    let (one, two) = (ca("one"), ca("two"));
    let good = files(&dir, &one, Some(&two));
    let (_, other_key) = server_leaf(&one);
    let garbage = write(&dir, "garbage.pem", "not pem at all\n");
    let torn = write(&dir, "torn.pem", &one.pem[..one.pem.len() / 2]);
    let missing = dir.path().join("missing.pem");
    let cases = [
        (
            TlsFiles {
                cert: missing.clone(),
                ..good.clone()
            },
            CERT_FLAG,
            &missing,
        ),
        (
            TlsFiles {
                cert: garbage.clone(),
                ..good.clone()
            },
            CERT_FLAG,
            &garbage,
        ),
        (
            TlsFiles {
                cert: torn.clone(),
                ..good.clone()
            },
            CERT_FLAG,
            &torn,
        ),
        (
            TlsFiles {
                key: garbage.clone(),
                ..good.clone()
            },
            KEY_FLAG,
            &garbage,
        ),
        (
            TlsFiles {
                key: good.cert.clone(),
                ..good.clone()
            },
            KEY_FLAG,
            &good.cert,
        ),
        (
            TlsFiles {
                key: write(&dir, "other-key.pem", &other_key),
                ..good.clone()
            },
            KEY_FLAG,
            &dir.path().join("other-key.pem"),
        ),
        (
            TlsFiles {
                client_ca: Some(garbage.clone()),
                ..good.clone()
            },
            CLIENT_CA_FLAG,
            &garbage,
        ),
    ];
    for (files, flag, path) in cases {
        let error = load(&files).expect_err("refused");
        assert_eq!((error.flag, &error.path), (flag, path), "{error}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
    load(&good).expect("the good set still loads");
}

#[test]
fn refuses_a_huge_file_without_reading_it_whole() {
    let dir = TempDir::new().expect("tempdir");
    let mut good = files(&dir, &ca("test ca"), None);
    let huge = dir.path().join("huge.pem");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(MAX_PEM_BYTES + 1).expect("sparse file");
    good.cert = huge;
    let error = load(&good).expect_err("refused");
    assert!(error.message.contains("larger than"), "{error}");
}

#[test]
fn subject_is_the_common_name_or_else_the_whole_dn() {
    let ca = ca("test ca");
    let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
    let (with_cn, _) = client_leaf(
        &ca,
        &[
            (DnType::CommonName, "alice"),
            (DnType::OrganizationName, "Acme"),
        ],
    );
    assert_eq!(subject_of(&der(&with_cn)).as_deref(), Some("alice"));
    let (without_cn, _) = client_leaf(
        &ca,
        &[
            (DnType::OrganizationName, "Acme"),
            (DnType::CountryName, "NL"),
        ],
    );
    let dn = subject_of(&der(&without_cn)).expect("a DN");
    assert!(dn.contains("O=Acme") && dn.contains("C=NL"), "{dn}");
    let (empty, _) = client_leaf(&ca, &[]);
    assert_eq!(subject_of(&der(&empty)), None);
    assert_eq!(subject_of(&CertificateDer::from(b"junk".to_vec())), None);
}

#[test]
fn no_subject_without_tls() {
    assert_eq!(client_subject(&http::Extensions::new()), None);
}

/// A real handshake on loopback: the server side's connect info, as tonic puts it in a
/// request's extensions, yields the client certificate's CN.
#[tokio::test]
async fn client_subject_reads_the_verified_client_certificate() {
    let dir = TempDir::new().expect("tempdir");
    let (server_ca, client_ca) = (ca("server ca"), ca("client ca"));
    let loaded = load(&files(&dir, &server_ca, Some(&client_ca))).expect("loads");
    let (client_cert, client_key) =
        client_leaf(&client_ca, &[(DnType::CommonName, "reporting-job")]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = async {
        let (tcp, peer) = listener.accept().await.expect("accept");
        // As the port serves it: a connection counted at its gate.
        let caps = crate::connections::Caps {
            total: 1,
            per_ip: 1,
            first_bytes: std::time::Duration::from_secs(10),
            idle: std::time::Duration::from_secs(60),
        };
        let gate = crate::connections::Gate::new(caps, Arc::default());
        let admitted = gate.admit(peer.ip()).expect("a place");
        let tracked = crate::connections::Tracked::new(tcp, admitted);
        tokio_rustls::TlsAcceptor::from(loaded.config.clone())
            .accept(tracked)
            .await
            .expect("server handshake")
    };
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let connector =
            tokio_rustls::TlsConnector::from(client_config(&server_ca, &client_cert, &client_key));
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        connector
            .connect(name, tcp)
            .await
            .expect("client handshake")
    };
    let (server_side, _client_side) = tokio::join!(server, client);
    let mut extensions = http::Extensions::new();
    extensions.insert(server_side.connect_info());
    assert_eq!(
        client_subject(&extensions).as_deref(),
        Some("reporting-job")
    );
}

fn client_config(trusted: &Ca, cert: &str, key: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.pem.as_bytes()).expect("ca"))
        .expect("root");
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client auth");
    Arc::new(config)
}
