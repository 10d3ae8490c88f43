//! The CLI over TLS: `--server https://…` with `--tls-ca`, mutual TLS with `--tls-cert` and
//! `--tls-key`, and the exit codes of what goes wrong (2 for a flag or file, 3 for TLS).

use streamgate_testkit::tls::{TestCa, TestTls, path_arg};
use streamgate_testkit::{on_each_broker_tls, unchanged};

use crate::support::{cli_at, stderr, stdout};

/// The server's URL by name, as a user types it: the test certificate names `localhost`.
fn localhost_url(server: &streamgate_testkit::TestServer) -> String {
    format!("https://localhost:{}", server.addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_over_tls_with_the_ca_and_a_tls_error_without_it() {
    on_each_broker_tls(TestTls::new, unchanged, |server| async move {
        let tls = server.tls.clone().expect("tls");
        let topic = server.topic(1).await;
        let url = localhost_url(&server);
        let ca = path_arg(&tls.ca.path);

        let listed = cli_at(&url, &["topics", "--tls-ca", &ca], None).await;
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert!(stdout(&listed).contains(&topic), "{}", stdout(&listed));

        // The system's CAs do not include the test CA.
        let untrusted = cli_at(&url, &["topics"], None).await;
        assert_eq!(untrusted.status.code(), Some(3), "{}", stderr(&untrusted));
        let message = stderr(&untrusted);
        assert!(
            message.contains("TLS") && message.contains("--tls-ca"),
            "{message}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    on_each_broker_tls(TestTls::mutual, unchanged, |server| async move {
        let tls = server.tls.clone().expect("tls");
        let topic = server.topic(1).await;
        let url = localhost_url(&server);
        let ca = path_arg(&tls.ca.path);
        let client = tls.client.clone().expect("client certificate");
        let (cert, key) = (path_arg(&client.cert), path_arg(&client.key));

        let listed = cli_at(
            &url,
            &[
                "--tls-ca",
                &ca,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "topics",
            ],
            None,
        )
        .await;
        assert!(listed.status.success(), "{}", stderr(&listed));
        assert!(stdout(&listed).contains(&topic), "{}", stdout(&listed));

        // Refused by the server: without a certificate, and with one from another CA.
        let rogue_ca = TestCa::new(tls.dir.path(), "rogue");
        let rogue = rogue_ca.client_cert(tls.dir.path(), "mallory");
        let (rogue_cert, rogue_key) = (path_arg(&rogue.cert), path_arg(&rogue.key));
        for args in [
            vec!["--tls-ca", &ca, "topics"],
            vec![
                "--tls-ca",
                &ca,
                "--tls-cert",
                &rogue_cert,
                "--tls-key",
                &rogue_key,
                "topics",
            ],
        ] {
            let refused = cli_at(&url, &args, None).await;
            assert_eq!(
                refused.status.code(),
                Some(3),
                "{args:?}: {}",
                stderr(&refused)
            );
            assert!(
                stderr(&refused).contains("--tls-cert"),
                "{}",
                stderr(&refused)
            );
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unusable_tls_flags_exit_2_naming_the_flag() {
    let tls = TestTls::new();
    let (ca, cert) = (path_arg(&tls.ca.path), path_arg(&tls.server.cert));
    let missing = path_arg(&tls.dir.path().join("missing.pem"));
    let key = path_arg(&tls.server.key);
    // Nothing listens on port 9: each case fails before connecting.
    let url = "https://localhost:9";
    for (args, expected) in [
        (
            vec!["--tls-ca", missing.as_str()],
            vec!["--tls-ca", missing.as_str()],
        ),
        (
            vec!["--tls-ca", key.as_str()],
            vec!["--tls-ca", key.as_str()],
        ),
        (vec!["--tls-cert", cert.as_str()], vec!["--tls-key"]),
        (
            vec!["--tls-cert", cert.as_str(), "--tls-key", ca.as_str()],
            vec!["--tls-key", ca.as_str()],
        ),
    ] {
        let output = cli_at(url, &[args.as_slice(), &["topics"]].concat(), None).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            expected.iter().all(|part| message.contains(part)),
            "{args:?}: {message}"
        );
    }
    let plain = cli_at("http://127.0.0.1:9", &["--tls-ca", &ca, "topics"], None).await;
    assert_eq!(plain.status.code(), Some(2), "{}", stderr(&plain));
    assert!(stderr(&plain).contains("https://"), "{}", stderr(&plain));
}
