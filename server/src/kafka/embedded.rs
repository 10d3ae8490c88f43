//! The embedded broker: librdkafka's in-process Kafka-protocol mock cluster, so that one
//! command runs everything on a bare machine. Any Kafka client (kcat included) can connect
//! to its loopback address. Data lives in memory only.
//!
//! `MockCluster` holds a raw librdkafka handle and is neither `Send` nor `Sync`, so it lives
//! on a thread of its own and is driven through a channel; dropping the handle stops it.

use std::sync::mpsc as std_mpsc;
use std::thread;

use rdkafka::mocking::MockCluster;
#[cfg(feature = "test-hooks")]
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio::sync::oneshot;

use super::KafkaSetupError;

type Reply = oneshot::Sender<Result<(), String>>;

/// Produce requests failed during an injected outage: far more than any outage test sends.
#[cfg(feature = "test-hooks")]
const OUTAGE_ERRORS: usize = 100_000;

enum Command {
    /// Sent by the owner's drop: the broker stops even while handles are still held (by a
    /// connection the drain gave up on, say), which then get "stopped" answers.
    Stop,
    CreateTopic {
        name: String,
        partitions: i32,
        reply: Reply,
    },
    #[cfg(feature = "test-hooks")]
    SetUp { up: bool, reply: Reply },
}

/// A running embedded broker. Dropping it shuts the broker down, whatever handles remain.
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<std_mpsc::Sender<Command>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a mock cluster of `broker_count` brokers and waits until it listens.
    pub fn start(broker_count: i32) -> Result<Self, KafkaSetupError> {
        let (commands, inbox) = std_mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<String, String>>();
        let thread = thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let cluster = match MockCluster::new(broker_count) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Runs until told to stop (or every sender is gone), then drops (stops) the
                // cluster.
                for command in inbox {
                    match command {
                        Command::Stop => break,
                        Command::CreateTopic {
                            name,
                            partitions,
                            reply,
                        } => {
                            let _ = reply.send(
                                cluster
                                    .create_topic(&name, partitions, 1)
                                    .map_err(|e| e.to_string()),
                            );
                        }
                        #[cfg(feature = "test-hooks")]
                        Command::SetUp { up, reply } => {
                            // Every produce request fails with a retriable error while the
                            // broker is "down". (Closing the mock's connections instead,
                            // with broker_down, crashed librdkafka once in CI.)
                            if up {
                                cluster.clear_request_errors(RDKafkaApiKey::Produce);
                            } else {
                                let errors = vec![
                                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
                                    OUTAGE_ERRORS
                                ];
                                cluster.request_errors(RDKafkaApiKey::Produce, &errors);
                            }
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            })
            .map_err(|e| KafkaSetupError::Embedded(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| KafkaSetupError::Embedded("broker thread ended at start".into()))?
            .map_err(KafkaSetupError::Embedded)?;
        Ok(Self {
            bootstrap,
            commands: Some(commands),
            thread: Some(thread),
        })
    }

    /// The loopback address Kafka clients connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic (a no-op if it exists with the same partition count).
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaSetupError> {
        self.handle()?.create_topic(name, partitions).await
    }

    /// A cheap, `Send` handle for creating topics from a task; once the broker is dropped,
    /// its calls answer that the broker stopped.
    pub fn handle(&self) -> Result<EmbeddedHandle, KafkaSetupError> {
        let commands = self.commands.clone().ok_or(KafkaSetupError::Embedded(
            "the embedded broker stopped".into(),
        ))?;
        Ok(EmbeddedHandle { commands })
    }

    /// Fault injection for outage tests (feature `test-hooks`): `false` makes every produce request fail with a
    /// retriable error (NOT_ENOUGH_REPLICAS), as a cluster without its replicas would;
    /// `true` lets them through again.
    #[cfg(feature = "test-hooks")]
    pub async fn set_up(&self, up: bool) -> Result<(), KafkaSetupError> {
        self.call(|reply| Command::SetUp { up, reply })
            .await
            .map_err(|detail| KafkaSetupError::Refused {
                action: if up {
                    "bring the embedded broker up"
                } else {
                    "take the embedded broker down"
                }
                .into(),
                detail,
            })
    }

    #[cfg(feature = "test-hooks")]
    async fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), String> {
        match &self.commands {
            Some(commands) => call(commands, command).await,
            None => Err("embedded broker stopped".to_owned()),
        }
    }
}

/// See [`EmbeddedBroker::handle`].
#[derive(Clone)]
pub struct EmbeddedHandle {
    commands: std_mpsc::Sender<Command>,
}

impl EmbeddedHandle {
    /// Creates a topic (a no-op if it exists with the same partition count).
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaSetupError> {
        call(&self.commands, |reply| Command::CreateTopic {
            name: name.to_owned(),
            partitions,
            reply,
        })
        .await
        .map_err(|detail| KafkaSetupError::Refused {
            action: format!("create topic {name}"),
            detail,
        })
    }
}

async fn call(
    commands: &std_mpsc::Sender<Command>,
    command: impl FnOnce(Reply) -> Command,
) -> Result<(), String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(command(reply))
        .map_err(|_| "embedded broker stopped".to_owned())?;
    answer
        .await
        .map_err(|_| "embedded broker stopped".to_owned())?
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        // Stop, not only close the channel: a handle may outlive the owner, and waiting for
        // it here would block whatever thread drops the broker — the one, perhaps, that
        // would have let go of that handle.
        if let Some(commands) = self.commands.take() {
            let _ = commands.send(Command::Stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn dropping_the_broker_stops_it_while_a_handle_is_still_held() {
        let broker = EmbeddedBroker::start(1).expect("the embedded broker starts");
        let handle = broker.handle().expect("a handle");
        handle.create_topic("t", 1).await.expect("created");
        let (dropped, done) = std_mpsc::channel();
        thread::spawn(move || {
            drop(broker);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(30))
            .expect("the drop returns while the handle lives");
        let error = handle
            .create_topic("u", 1)
            .await
            .expect_err("a stopped broker creates nothing");
        assert!(error.to_string().contains("stopped"), "{error}");
    }
}
