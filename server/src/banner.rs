//! The start-up banner: where to connect, and a plain warning for the embedded broker. The
//! Kafka address is on a line containing the word `broker`, for scripts.

use std::fmt::Write;
use std::net::SocketAddr;

use crate::kafka::Kafka;

/// The banner for a server listening on `listen` over `kafka`.
pub fn banner(listen: SocketAddr, kafka: &Kafka) -> String {
    let mut text = format!(
        "streamgate-server {}\n  gRPC + grpc-web : http://{listen}   (try: grpcurl -plaintext {listen} list)\n  dashboard       : http://{listen}/\n",
        env!("CARGO_PKG_VERSION")
    );
    let bootstrap = kafka.bootstrap_servers();
    // Writing to a String cannot fail.
    let _ = match kafka.embedded_broker() {
        Some(_) => write!(
            text,
            "  Kafka broker    : {bootstrap} (embedded; try: kcat -b {bootstrap} -L)\n  WARNING: the embedded broker keeps data in memory only, at most the last ~5 MiB per partition;\n           it is lost when the server stops.\n           Point at a real cluster with --brokers HOST:PORT (or STREAMGATE_BROKERS).\n"
        ),
        None => writeln!(text, "  Kafka broker    : {bootstrap} (external cluster)"),
    };
    text
}
