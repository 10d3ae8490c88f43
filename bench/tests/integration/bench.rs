//! `streamgate-bench`: every workload runs to the end with small counts and reports sane
//! figures. Behaviour only: no test asserts a speed.

use serde_json::Value;
use streamgate_testkit::{AuthFile, random_name};

use crate::support::{
    Bench, TestServer, bench_at, bench_with_env, on_each_broker, on_each_broker_with, stderr,
    stdout,
};

pub const RECORDS: u64 = 2000;

/// Runs `streamgate-bench WORKLOAD ARGS --json` and returns its one JSON object, after checking what every
/// report has.
pub async fn bench_json(server: &TestServer, workload: &str, args: &[&str]) -> Value {
    let records = RECORDS.to_string();
    let mut all = vec![workload, "--records", &records, "--json"];
    all.extend_from_slice(args);
    let output = server.bench(&all).await;
    assert!(output.status.success(), "{all:?}: {}", stderr(&output));
    assert!(
        stderr(&output).is_empty(),
        "--json prints nothing on stderr: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "exactly one JSON object: {text}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(report["workload"], workload, "{report}");
    assert_eq!(report["records"], RECORDS, "{report}");
    assert!(
        report["elapsed_s"].as_f64().is_some_and(|s| s > 0.0),
        "{report}"
    );
    assert!(
        report["records_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    assert!(
        report["mb_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(
        report["window"]["records"]
            .as_u64()
            .is_some_and(|r| r > 0 && r <= RECORDS)
    );
    report
}

/// p50 <= p90 <= p99 <= max, all positive.
fn assert_ordered(latency: &Value) {
    let p = |k: &str| {
        latency[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} in {latency}"))
    };
    assert!(p("p50") > 0.0, "{latency}");
    assert!(
        p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("max"),
        "{latency}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_publish_and_publish_stream_report_throughput_and_ordered_latencies() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let unary = bench_json(&server, "publish", &["--topic", &topic]).await;
        assert_ordered(&unary["latency_ms"]);
        assert_eq!(unary["concurrency"], 64);
        assert!(unary["ratio"].is_null());
        // Without --server-pid the usage comes from the server's own /metrics.
        assert!(
            unary["server_cpu"]["seconds"]
                .as_f64()
                .is_some_and(|s| s >= 0.0)
                && unary["server_rss_mib"]["final"]
                    .as_f64()
                    .is_some_and(|m| m > 0.0),
            "{unary}"
        );

        let streamed = bench_json(&server, "publish-stream", &["--topic", &topic]).await;
        assert_ordered(&streamed["latency_ms"]);
        assert_eq!(streamed["concurrency"], 4);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_subscribe_preloads_what_the_topic_lacks_then_reads_n_records() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let report = bench_json(&server, "subscribe", &["--topic", &topic]).await;
        assert!(report["latency_ms"].is_null(), "{report}");
        assert_eq!(report["preload"]["records"], RECORDS, "{report}");

        // The topic holds enough now: nothing more is published. The bench counts what a
        // topic holds by its watermarks, which the real test broker (Tansu) moves by batches
        // rather than records (docs/testing.md), so there it may preload again.
        let again = bench_json(&server, "subscribe", &["--topic", &topic]).await;
        assert_eq!(again["records"], RECORDS, "{again}");
        if server.kind == streamgate_testkit::BrokerKind::Embedded {
            assert!(again["preload"].is_null(), "{again}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_e2e_measures_publish_to_receive_latency() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let args = ["--topic", &topic, "--rate", "4000/s"];
        let report = bench_json(&server, "e2e", &args).await;
        assert_ordered(&report["latency_ms"]);
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_direct_reports_both_figures_and_the_ratio() {
    on_each_broker(|server| async move {
        let topic = random_name("bench");
        let bootstrap = server.kafka.bootstrap_servers().to_owned();
        let direct = ["--topic", &topic, "--direct", &bootstrap];
        for workload in ["publish", "subscribe", "e2e"] {
            let report = bench_json(&server, workload, &direct).await;
            assert!(
                report["direct_records_per_s"]
                    .as_f64()
                    .is_some_and(|r| r > 0.0),
                "{report}"
            );
            assert!(report["direct_mb_per_s"].as_f64().is_some_and(|r| r > 0.0));
            assert!(
                report["ratio"].as_f64().is_some_and(|r| r > 0.0),
                "{report}"
            );
            assert_eq!(report["direct_records"], RECORDS, "{report}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_rounds_alternate_both_sides_and_report_the_median_round() {
    on_each_broker(|server| async move {
        let topic = random_name("rounds");
        let bootstrap = server.kafka.bootstrap_servers().to_owned();
        let args = ["--topic", &topic, "--direct", &bootstrap, "--rounds", "3"];
        let report = bench_json(&server, "subscribe", &args).await;
        let rounds = report["rounds"].as_array().expect("rounds");
        assert_eq!(rounds.len(), 3, "{report}");
        let ratios: Vec<f64> = rounds
            .iter()
            .map(|r| r["ratio"].as_f64().expect("every round has a ratio"))
            .collect();
        let median = report["median_round"].as_u64().expect("median_round") as usize;
        assert!((1..=3).contains(&median), "{report}");
        let chosen = &rounds[median - 1];
        // The headline figures are that round's, and its ratio is the middle one.
        assert_eq!(report["ratio"], chosen["ratio"], "{report}");
        assert_eq!(report["records_per_s"], chosen["records_per_s"], "{report}");
        assert_eq!(
            report["direct_records_per_s"], chosen["direct_records_per_s"],
            "{report}"
        );
        let ratio = ratios[median - 1];
        let below = ratios.iter().filter(|r| **r < ratio).count();
        let above = ratios.iter().filter(|r| **r > ratio).count();
        assert!(below <= 1 && above <= 1, "not the median: {ratios:?}");
        // Only the first round published what the topic lacked.
        assert_eq!(report["preload"]["records"], RECORDS, "{report}");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_server_pid_reports_cpu_and_memory() {
    on_each_broker(|server| async move {
        let topic = server.topic(1).await;
        // The test server runs in this process: its /proc entries are the test's.
        let pid = std::process::id().to_string();
        let report = bench_json(
            &server,
            "publish",
            &["--topic", &topic, "--server-pid", &pid],
        )
        .await;
        assert!(
            report["server_cpu"]["cores"]
                .as_f64()
                .is_some_and(|c| c >= 0.0),
            "{report}"
        );
        let rss = &report["server_rss_mib"];
        assert!(rss["final"].as_f64().is_some_and(|m| m > 0.0), "{report}");
        assert!(rss["peak"].as_f64() >= rss["final"].as_f64(), "{report}");
        server.stop().await;
    })
    .await;
}

/// A missing topic is created through the server (no broker address needed) with
/// `--partitions`; a caller without `topics:manage` is told which permission it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_creates_a_missing_topic_through_the_server() {
    let file = AuthFile::new(&[("reader", "reader-token", &["topics", "publish:*"])]);
    on_each_broker_with(
        |s| file.apply(s),
        |server| async move {
            let topic = random_name("fresh");
            let args = [
                "publish",
                "--records",
                "10",
                "--topic",
                &topic,
                "--partitions",
                "6",
            ];
            let admin = [("STREAMGATE_TOKEN", streamgate_testkit::ADMIN_TOKEN)];
            let output = bench_with_env(&server.url(), &args, &admin).await;
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            let listed = server
                .client_with_token(Some(streamgate_testkit::ADMIN_TOKEN))
                .await
                .list_topics(streamgate::proto::ListTopicsRequest::default())
                .await
                .expect("listed")
                .into_inner();
            let created = listed
                .topics
                .iter()
                .find(|t| t.name == topic)
                .expect("created");
            assert_eq!(created.partitions.len(), 6);

            let other = random_name("fresh");
            let args = ["publish", "--records", "10", "--topic", &other];
            let reader = [("STREAMGATE_TOKEN", "reader-token")];
            let denied = bench_with_env(&server.url(), &args, &reader).await;
            assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
            let message = stderr(&denied);
            assert!(
                message.contains(&format!("topics:manage:{other}")),
                "{message}"
            );

            let output = server.bench(&["subscribe", "--concurrency", "4"]).await;
            assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
            server.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_stops_at_a_refused_call_with_the_usual_exit_code() {
    let file = AuthFile::new(&[("reader", "reader-token", &["topics", "subscribe:*"])]);
    on_each_broker_with(
        |s| file.apply(s),
        |server| async move {
            let topic = server.topic(1).await;
            for workload in ["publish", "publish-stream"] {
                let args = [workload, "--records", "50", "--topic", &topic, "--json"];
                let env = [("STREAMGATE_TOKEN", "reader-token")];
                let denied = bench_with_env(&server.url(), &args, &env).await;
                assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
                assert!(
                    stderr(&denied).contains("PERMISSION_DENIED"),
                    "{}",
                    stderr(&denied)
                );
                assert!(stdout(&denied).is_empty(), "no report: {}", stdout(&denied));
            }
            server.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_out_of_range_are_refused_with_usage() {
    // Refused while parsing: no server is ever asked, so none runs here.
    for rounds in ["0", "101", "-1", "many"] {
        let output = bench_at(
            "http://127.0.0.1:9",
            &["publish", &format!("--rounds={rounds}")],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{rounds}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.contains("--rounds"), "{rounds}: {message}");
        assert!(stdout(&output).is_empty(), "{rounds}");
    }
    // The bound itself passes parsing, and the run fails where it connects (nothing
    // listens on port 9): exit 3 (server unreachable), not the usage error's 2.
    let output = bench_at("http://127.0.0.1:9", &["publish", "--rounds", "100"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!stderr(&output).contains("--rounds"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_workloads_the_connection_flags_and_the_exit_codes() {
    // Parsing only: no server is asked, so none runs here.
    let output = bench_at("http://127.0.0.1:9", &["--help"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    for word in [
        "publish-stream",
        "subscribe",
        "e2e",
        "--direct",
        "--protocol",
        "connect-json",
        "--compare-protocol",
        "--filter",
        "--compare-filter",
        "page-events",
        "--rounds",
        "--server-pid",
        "--server",
        "--token",
        "--tls-ca",
        "Exit codes: 0 ok",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
}
