//! Who a client certificate names, for the authentication layer: with `--tls-client-ca` a
//! connection only exists once its client certificate was verified against that bundle, so
//! the certificate tonic puts in the request's extensions is an identity the server vouches
//! for.

use rustls_pki_types::CertificateDer;
use tonic::transport::server::TlsConnectInfo;

use crate::connections::Connection;

/// The subject of the verified client certificate of the connection a request came on: its
/// Common Name, or the whole subject DN (`CN=…, O=…` style) when it has no usable CN. `None`
/// without TLS, without client certificates, or for a certificate that does not parse.
pub fn client_subject(extensions: &http::Extensions) -> Option<String> {
    let info = extensions.get::<TlsConnectInfo<Connection>>()?;
    let certificates = info.peer_certs()?;
    // The first is the client's own; the others are the intermediates it sent along.
    subject_of(certificates.first()?)
}

/// The subject of a DER certificate: its first Common Name if that is a string, otherwise the
/// whole subject DN; `None` if it does not parse or its subject is empty.
pub fn subject_of(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let subject = parsed.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty());
    match common_name {
        Some(cn) => Some(cn.to_owned()),
        None => Some(subject.to_string()).filter(|dn| !dn.is_empty()),
    }
}
