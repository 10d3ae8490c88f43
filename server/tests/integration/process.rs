//! The real `streamgate-server` binary as a child process: started with flags, its banner
//! and log lines read as they come, stopped with signals.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{poll_for, within};

/// A `streamgate-server` process, its log lines collected as they come.
pub struct ServerProcess {
    child: Child,
    /// The gRPC URL from the banner.
    pub url: String,
    /// Every stderr line so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the real binary with `args` and waits for its banner.
    pub async fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate-server-with-hooks"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("server> {line}");
                lines.lock().expect("log").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = within(Duration::from_secs(30), "the server's banner", async {
            while let Some(line) = stdout.next_line().await.expect("stdout") {
                if let Some(at) = line.find("https://").or_else(|| line.find("http://")) {
                    let url: String = line[at..].split_whitespace().next().unwrap_or("").into();
                    return url;
                }
            }
            panic!("the server ended before its banner");
        })
        .await;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Self { child, url, log }
    }

    /// Waits until a log line contains every one of `parts`, returning it.
    pub async fn wait_for_line(&self, parts: &[&str], timeout: Duration) -> Option<String> {
        poll_for(timeout, async || {
            self.log
                .lock()
                .expect("log")
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .cloned()
        })
        .await
        .ok()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM").await;
        self.exit_within(Duration::from_secs(30)).await
    }

    /// Kills the process with SIGKILL (no drain, no commit, no goodbye) and waits for it.
    pub async fn kill(mut self) {
        self.signal("KILL").await;
        self.exit_within(Duration::from_secs(30)).await;
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the process.
    pub async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} {pid}");
    }

    /// Waits for the process to exit, failing the test after `bound`.
    pub async fn exit_within(&mut self, bound: Duration) -> std::process::ExitStatus {
        within(bound, "the server process exits", self.child.wait())
            .await
            .expect("exit status")
    }
}
