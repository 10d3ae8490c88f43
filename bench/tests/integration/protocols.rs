//! `--protocol` and `--compare-protocol`: the workloads over Connect (binary and JSON) and
//! Server-Sent Events count exactly the records they publish and read, side by side with
//! gRPC in one run, over TLS too; a refusal over Connect stops the run as over gRPC; a
//! workload a protocol cannot carry is a usage error before any connection.

use serde_json::Value;
use streamgate_testkit::tls::{TestTls, path_arg};
use streamgate_testkit::{AuthFile, on_each_broker_tls, unchanged};

use crate::bench::{RECORDS, bench_json};
use crate::support::{Bench, bench_at, bench_with_env, on_each_broker_with, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_publishes_and_subscribes_over_every_protocol_with_exact_counts() {
    streamgate_testkit::on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        for protocol in ["connect-proto", "connect-json"] {
            let args = ["--topic", &topic, "--protocol", protocol];
            let report = bench_json(&server, "publish", &args).await;
            assert_eq!(report["protocol"], protocol, "{report}");
            assert!(report["latency_ms"]["p50"].as_f64() > Some(0.0), "{report}");
        }
        // The two runs above published what the topic holds: nothing is preloaded.
        for protocol in ["connect-proto", "connect-json", "sse"] {
            let args = ["--topic", &topic, "--protocol", protocol];
            let report = bench_json(&server, "subscribe", &args).await;
            assert_eq!(report["protocol"], protocol, "{report}");
            if server.kind == streamgate_testkit::BrokerKind::Embedded {
                assert!(report["preload"].is_null(), "{report}");
            }
        }
        server.stop().await;
    })
    .await;
}

/// The compared side's figures, after checking that they are all there.
fn compared(report: &Value, protocol: &str) -> f64 {
    assert_eq!(report["compared_protocol"], protocol, "{report}");
    assert_eq!(report["compared_records"], RECORDS, "{report}");
    assert_eq!(report["compared_errors"], serde_json::json!({}), "{report}");
    assert!(report["direct_records_per_s"].is_null(), "{report}");
    for round in report["rounds"].as_array().expect("rounds") {
        assert!(
            round["compared_records_per_s"].as_f64() > Some(0.0),
            "{round}"
        );
        assert!(round["ratio"].as_f64() > Some(0.0), "{round}");
    }
    // Both sides run through the server, so both have its usage.
    for key in ["server_cpu", "compared_server_cpu"] {
        assert!(
            report[key]["seconds"].as_f64() >= Some(0.0),
            "{key}: {report}"
        );
    }
    report["ratio"].as_f64().expect("a ratio")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_protocol_runs_both_protocols_each_round_and_reports_the_ratio() {
    streamgate_testkit::on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let args = [
            "--topic",
            &topic,
            "--protocol",
            "connect-json",
            "--compare-protocol",
            "grpc",
            "--rounds",
            "2",
        ];
        let report = bench_json(&server, "publish", &args).await;
        assert_eq!(report["rounds"].as_array().map(Vec::len), Some(2));
        let ratio = compared(&report, "grpc");
        let expected = report["records_per_s"].as_f64().expect("records/s")
            / report["compared_records_per_s"]
                .as_f64()
                .expect("records/s");
        assert!((ratio - expected).abs() < 1e-9, "{report}");

        let args = [
            "--topic",
            &topic,
            "--protocol",
            "sse",
            "--compare-protocol",
            "grpc",
        ];
        let report = bench_json(&server, "subscribe", &args).await;
        compared(&report, "grpc");

        // The text report names each side by its protocol.
        let text = server
            .bench(&[
                "subscribe",
                "--records",
                "500",
                "--topic",
                &topic,
                "--protocol",
                "connect-proto",
                "--compare-protocol",
                "connect-json",
            ])
            .await;
        assert!(text.status.success(), "{}", stderr(&text));
        let text = stdout(&text);
        for line in [
            "bench subscribe over connect-proto against connect-json",
            "\ngateway (connect-proto)\n",
            "\ngateway (connect-json)\n",
            "ratio connect-proto/connect-json: ",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_sse_run_over_tls_with_the_connection_s_settings() {
    on_each_broker_tls(TestTls::new, unchanged, |server| async move {
        let tls = server.tls.clone().expect("tls");
        let topic = server.topic(1).await;
        // The test certificate names localhost.
        let url = format!("https://localhost:{}", server.addr.port());
        let ca = path_arg(&tls.ca.path);
        for (workload, protocol) in [("publish", "connect-proto"), ("subscribe", "sse")] {
            let args = [
                workload,
                "--records",
                "200",
                "--topic",
                &topic,
                "--protocol",
                protocol,
                "--tls-ca",
                &ca,
                "--json",
            ];
            let output = bench_at(&url, &args).await;
            assert!(output.status.success(), "{args:?}: {}", stderr(&output));
            let report: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
            assert_eq!(report["records"], 200, "{report}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_over_connect_or_sse_stops_the_run_with_the_grpc_exit_code() {
    let file = AuthFile::new(&[
        ("reader", "reader-token", &["topics", "subscribe:*"]),
        ("writer", "writer-token", &["topics", "publish:*"]),
    ]);
    on_each_broker_with(
        |s| file.apply(s),
        |server| async move {
            let topic = server.topic(1).await;
            let cases = [
                ("publish", "connect-proto", "reader-token"),
                ("publish", "connect-json", "reader-token"),
                ("subscribe", "connect-json", "writer-token"),
                ("subscribe", "sse", "writer-token"),
            ];
            for (workload, protocol, token) in cases {
                let args = [
                    workload,
                    "--records",
                    "50",
                    "--topic",
                    &topic,
                    "--protocol",
                    protocol,
                    "--json",
                ];
                let env = [("STREAMGATE_TOKEN", token)];
                let denied = bench_with_env(&server.url(), &args, &env).await;
                let message = stderr(&denied);
                assert_eq!(denied.status.code(), Some(1), "{args:?}: {message}");
                assert!(message.contains("PERMISSION_DENIED"), "{args:?}: {message}");
                assert!(stdout(&denied).is_empty(), "no report: {}", stdout(&denied));
            }
            server.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_its_protocol_cannot_carry_is_a_usage_error_before_connecting() {
    // Nothing listens on port 9: a usage error must come before any connection (exit 2,
    // not 3).
    let cases: [&[&str]; 5] = [
        &["publish-stream", "--protocol", "connect-proto"],
        &["e2e", "--protocol", "connect-json"],
        &["publish", "--protocol", "sse"],
        &["publish", "--compare-protocol", "sse"],
        &["e2e", "--compare-protocol", "connect-json"],
    ];
    for args in cases {
        let output = bench_at("http://127.0.0.1:9", args).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        let flag = args[1];
        assert!(
            message.contains(&format!("does not run over {flag} {}", args[2])),
            "{args:?}: {message}"
        );
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
    // A second side is Kafka or another protocol, not both: clap refuses the pair.
    let both = [
        "publish",
        "--direct",
        "127.0.0.1:9",
        "--compare-protocol",
        "grpc",
    ];
    let output = bench_at("http://127.0.0.1:9", &both).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--compare-protocol"),
        "{}",
        stderr(&output)
    );
}
