//! The start-up banner: where to connect, and a plain warning for the embedded broker. The
//! Kafka address is on a line containing the word `broker`, for scripts.

use std::fmt::Write;
use std::net::SocketAddr;

use crate::kafka::Kafka;
use crate::schema::Live;
use crate::tls::TlsSettings;

/// The banner for a server listening on `listen` over `kafka`, with `tls` when it is on.
pub fn banner(
    listen: SocketAddr,
    kafka: &Kafka,
    tls: Option<&TlsSettings>,
    schemas: &Live,
) -> String {
    let url = super::url(listen, tls.is_some());
    let try_grpcurl = match tls {
        // The certificate names a host, rarely the listen address: the hint says so.
        Some(_) => format!(
            "grpcurl -cacert CA.pem HOST:{} list, HOST a name in the certificate",
            listen.port()
        ),
        None => format!("grpcurl -plaintext {listen} list"),
    };
    let mut text = format!(
        "streamgate-server {}\n  gRPC + grpc-web : {url}   (try: {try_grpcurl})\n  dashboard       : {url}/\n",
        env!("CARGO_PKG_VERSION")
    );
    // Writing to a String cannot fail.
    if let Some(tls) = tls {
        let _ = writeln!(
            text,
            "  TLS             : {} (reloaded on change or SIGHUP)",
            tls.files.cert.display()
        );
        if let Some(ca) = &tls.files.client_ca {
            let _ = writeln!(
                text,
                "  client certs    : required, signed by {}",
                ca.display()
            );
        }
    }
    if let Some(file) = schemas.file() {
        let _ = writeln!(
            text,
            "  schemas         : {} topic patterns typed, R2-R4 built in, the rest from {} (re-read on SIGHUP)",
            schemas.current().len(),
            file.display()
        );
    }
    let bootstrap = kafka.bootstrap_servers();
    let _ = match kafka.embedded_broker() {
        Some(_) => write!(
            text,
            "  Kafka broker    : {bootstrap} (embedded; try: kcat -b {bootstrap} -L)\n  WARNING: the embedded broker keeps data in memory only, at most the last ~5 MiB per partition;\n           it is lost when the server stops.\n           Point at a real cluster with --brokers HOST:PORT (or STREAMGATE_BROKERS).\n"
        ),
        None => writeln!(text, "  Kafka broker    : {bootstrap} (external cluster)"),
    };
    text
}
