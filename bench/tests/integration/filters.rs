//! `--filter` and `--compare-filter`: a filtered subscribe run preloads PageEvents ending
//! each partition with an end marker, reads them all (over every protocol), and counts the
//! records read, the records received and their bytes, side by side with no filter; a topic
//! it did not preload is refused.

use serde_json::Value;

use crate::bench::{RECORDS, bench_json};
use crate::support::{Bench, on_each_broker, stderr};

/// A report's unsigned figure.
fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_reads_every_record_and_receives_only_the_matches() {
    on_each_broker(|server| async move {
        let topic = server.topic(3).await;
        let args = [
            "--topic",
            &topic,
            "--filter",
            "value.duration > 100",
            "--compare-filter",
            "",
            "--rounds",
            "2",
        ];
        // Records read: RECORDS on both sides (bench_json checks the first), the end
        // markers left out.
        let report = bench_json(&server, "subscribe", &args).await;
        assert_eq!(report["values"], "page-events", "{report}");
        assert_eq!(report["filter"], "value.duration > 100", "{report}");
        assert_eq!(report["compared_filter"], "", "{report}");
        assert_eq!(report["preload"]["records"], RECORDS, "{report}");
        assert_eq!(count(&report, "compared_records"), RECORDS, "{report}");
        // Unfiltered, every record comes; filtered, about 98.9 % of them.
        assert_eq!(count(&report, "compared_records_received"), RECORDS);
        let received = count(&report, "records_received");
        assert!(
            (RECORDS * 95 / 100..RECORDS).contains(&received),
            "{report}"
        );
        let bytes_ratio = report["bytes_ratio"].as_f64().expect("bytes_ratio");
        assert!((0.9..1.0).contains(&bytes_ratio), "{report}");
        let per_record = report["compared_bytes_per_record_read"].as_f64();
        assert!(per_record > Some(80.0), "{report}");
        assert!(report["ratio"].as_f64() > Some(0.0), "{report}");
        for round in report["rounds"].as_array().expect("rounds") {
            assert!(round["bytes_ratio"].as_f64() > Some(0.0), "{round}");
            assert!(
                round["compared_records_per_s"].as_f64() > Some(0.0),
                "{round}"
            );
        }
        for key in ["server_cpu", "compared_server_cpu"] {
            assert!(
                report[key]["us_per_record"].as_f64() > Some(0.0),
                "{key}: {report}"
            );
        }

        // The topic holds records now, end markers among them: a filtered run refuses it.
        let again = server
            .bench(&["subscribe", "--topic", &topic, "--filter", "true"])
            .await;
        assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
        assert!(
            stderr(&again).contains("fresh --topic"),
            "{}",
            stderr(&again)
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_receives_the_same_matches_as_grpc() {
    on_each_broker(|server| async move {
        for protocol in ["connect-proto", "connect-json", "sse"] {
            let topic = server.topic(3).await;
            let args = [
                "--topic",
                &topic,
                "--filter",
                "key == 'P1'",
                "--protocol",
                protocol,
                "--compare-protocol",
                "grpc",
            ];
            let report = bench_json(&server, "subscribe", &args).await;
            assert_eq!(count(&report, "compared_records"), RECORDS, "{report}");
            // The records are the same on every run: so are the matches, about half.
            let received = count(&report, "records_received");
            assert_eq!(
                received,
                count(&report, "compared_records_received"),
                "{report}"
            );
            assert!(
                (RECORDS * 2 / 5..RECORDS * 3 / 5).contains(&received),
                "{protocol}: {report}"
            );
            assert!(count(&report, "bytes_received") > 0, "{report}");
        }
        server.stop().await;
    })
    .await;
}
