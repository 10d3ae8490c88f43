//! Consume: acknowledged consumption. What is acked is committed (as a contiguous prefix),
//! what is not comes back — after a reconnect, an ack deadline, a nack, a rebalance or a
//! killed server — and what used up its attempts lands in the dead-letter topic.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use streamgate::proto::{
    self, AckRequest, ConsumeRequest, ConsumeStart, ConsumedRecord, NackRequest, consume_request,
    consume_response, start_position,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::process::ServerProcess;
use crate::support::{
    TestServer, eventually, on_each_broker, publish_values, random_name, subscribe_request, within,
};

/// Long enough for a group join and a rebalance on the real test broker.
const PATIENCE: Duration = Duration::from_secs(60);

/// One Consume stream driven by a test.
struct Consumer {
    requests: Option<mpsc::Sender<ConsumeRequest>>,
    responses: tonic::Streaming<proto::ConsumeResponse>,
    /// Every Assignment seen so far.
    assignments: Vec<proto::Assignment>,
    /// Records read while waiting for an assignment, not yet taken.
    unread: Vec<ConsumedRecord>,
}

impl Consumer {
    async fn open(url: String, start: ConsumeStart) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(ConsumeRequest {
            request: Some(consume_request::Request::Start(start)),
        })
        .await
        .expect("queue start");
        let mut client = proto::event_gateway_client::EventGatewayClient::connect(url)
            .await
            .expect("connect");
        let responses = client.consume(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self {
            requests: Some(tx),
            responses,
            assignments: Vec::new(),
            unread: Vec::new(),
        })
    }

    async fn start(server: &TestServer, start: ConsumeStart) -> Self {
        Self::open(server.url(), start)
            .await
            .expect("Consume opens")
    }

    /// The next batch of records, or `None` when nothing arrives within `timeout`.
    async fn next_batch(&mut self, timeout: Duration) -> Option<Vec<ConsumedRecord>> {
        loop {
            let next = tokio::time::timeout(timeout, self.responses.next())
                .await
                .ok()?;
            match next.expect("the stream goes on").expect("no error").message {
                Some(consume_response::Message::Assignment(a)) => self.assignments.push(a),
                Some(consume_response::Message::Records(batch)) => return Some(batch.records),
                None => panic!("an empty ConsumeResponse"),
            }
        }
    }

    /// Exactly the next `count` records (failing the test if they take longer than
    /// [`PATIENCE`]).
    async fn take(&mut self, count: usize) -> Vec<ConsumedRecord> {
        let mut records = std::mem::take(&mut self.unread);
        while records.len() < count {
            let batch = self
                .next_batch(PATIENCE)
                .await
                .unwrap_or_else(|| panic!("only {} of {count} records arrived", records.len()));
            records.extend(batch);
        }
        records
    }

    /// Reads until the latest Assignment holds `partitions` partitions; returns them.
    async fn assigned(&mut self, partitions: usize) -> BTreeSet<i32> {
        within(PATIENCE, "the assignment", async {
            loop {
                if let Some(last) = self.assignments.last()
                    && last.partitions.len() == partitions
                {
                    return last.partitions.iter().map(|p| p.partition).collect();
                }
                let next = self.responses.next().await;
                match next.expect("the stream goes on").expect("no error").message {
                    Some(consume_response::Message::Assignment(a)) => self.assignments.push(a),
                    Some(consume_response::Message::Records(batch)) => {
                        self.unread.extend(batch.records)
                    }
                    None => panic!("an empty ConsumeResponse"),
                }
            }
        })
        .await
    }

    async fn request(&self, request: consume_request::Request) {
        self.requests
            .as_ref()
            .expect("still open")
            .send(ConsumeRequest {
                request: Some(request),
            })
            .await
            .expect("the stream takes requests");
    }

    async fn ack<'a>(&self, records: impl IntoIterator<Item = &'a ConsumedRecord>) {
        let ack_ids = records.into_iter().map(|r| r.ack_id.clone()).collect();
        self.request(consume_request::Request::Ack(AckRequest { ack_ids }))
            .await;
    }

    async fn nack(&self, record: &ConsumedRecord) {
        self.request(consume_request::Request::Nack(NackRequest {
            ack_ids: vec![record.ack_id.clone()],
            delay: None,
        }))
        .await;
    }

    /// Half-closes the stream and waits for the server to end it (after its commit).
    async fn close(mut self) -> Result<(), tonic::Status> {
        self.requests = None;
        within(PATIENCE, "the end of the Consume stream", async {
            while let Some(message) = self.responses.next().await {
                message?;
            }
            Ok(())
        })
        .await
    }

    /// Reads until the stream fails, returning its status.
    async fn failure(mut self) -> tonic::Status {
        within(PATIENCE, "the stream's failure", async {
            loop {
                match self.responses.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(status)) => return status,
                    None => panic!("the stream ended without an error"),
                }
            }
        })
        .await
    }
}

fn start(topic: &str, group: &str) -> ConsumeStart {
    ConsumeStart {
        group: group.to_owned(),
        topics: vec![topic.to_owned()],
        start: Some(proto::StartPosition {
            position: Some(start_position::Position::Earliest(true)),
        }),
        ..Default::default()
    }
}

fn position(record: &ConsumedRecord) -> (i32, i64) {
    let r = record.record.as_ref().expect("a record");
    (r.partition, r.offset)
}

fn value(record: &ConsumedRecord) -> String {
    let r = record.record.as_ref().expect("a record");
    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
}

/// Publishes `count` records over one PublishStream (quicker than unary calls).
async fn publish_many(server: &TestServer, topic: &str, count: usize) {
    let requests = (0..count).map(|i| proto::PublishRequest {
        topic: topic.to_owned(),
        key: Some(bytes::Bytes::from(format!("k{i}"))),
        payload: Some(proto::publish_request::Payload::Value(bytes::Bytes::from(
            format!("v{i}"),
        ))),
        ..Default::default()
    });
    let mut client = server.client().await;
    let results = within(PATIENCE, "publishing", async {
        let mut results = client
            .publish_stream(futures::stream::iter(requests.collect::<Vec<_>>()))
            .await
            .expect("PublishStream")
            .into_inner();
        let mut acked = 0;
        while let Some(result) = results.next().await {
            let result = result.expect("stream result");
            assert!(
                matches!(result.outcome, Some(proto::publish_result::Outcome::Ack(_))),
                "{result:?}"
            );
            acked += 1;
        }
        acked
    })
    .await;
    assert_eq!(results, count);
}

/// The Done-when scenario: 1 000 records over two partitions, 500 acked out of order, a
/// disconnect; the next stream of the group gets exactly what was not acked, plus (no
/// sparse acks) what lies above each partition's first gap — and nothing below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_gets_back_exactly_what_was_not_acked_above_each_first_gap() {
    on_each_broker(async |server| {
        let topic = server.topic(2).await;
        let group = random_name("g");
        publish_many(&server, &topic, 1000).await;

        let mut first = Consumer::start(&server, start(&topic, &group)).await;
        let received = first.take(1000).await;
        let positions: BTreeSet<(i32, i64)> = received.iter().map(position).collect();
        assert_eq!(positions.len(), 1000, "no record twice");
        // Ack 500, newest first, skipping every record whose offset is a multiple of 3 and
        // then some, so that each partition has gaps.
        let mut acked: Vec<&ConsumedRecord> = received
            .iter()
            .filter(|r| position(r).1 % 3 != 0)
            .take(500)
            .collect();
        acked.reverse();
        assert_eq!(acked.len(), 500);
        for chunk in acked.chunks(64) {
            first.ack(chunk.iter().copied()).await;
        }
        let acked: BTreeSet<(i32, i64)> = acked.iter().map(|r| position(r)).collect();
        first.close().await.expect("a clean end");

        let mut expected = BTreeSet::new();
        for partition in [0, 1] {
            let unacked = positions
                .iter()
                .filter(|(p, _)| *p == partition)
                .find(|pos| !acked.contains(pos));
            if let Some(&(_, gap)) = unacked {
                expected.extend(
                    positions
                        .iter()
                        .filter(|(p, o)| *p == partition && *o >= gap),
                );
            }
        }
        let never_acked: BTreeSet<_> = positions.difference(&acked).copied().collect();
        assert!(never_acked.is_subset(&expected));
        assert_eq!(never_acked.len(), 500);

        let mut second = Consumer::start(&server, start(&topic, &group)).await;
        let again = second.take(expected.len()).await;
        let again: BTreeSet<(i32, i64)> = again.iter().map(position).collect();
        assert_eq!(
            again, expected,
            "exactly the unacked records and those above the gaps"
        );
        assert!(
            second.next_batch(Duration::from_secs(2)).await.is_none(),
            "nothing more"
        );
        second.close().await.expect("a clean end");
    })
    .await;
}

/// The small case of the same rule: all but two in the middle acked; after a cancel (no
/// clean end at all), the two come back and nothing below the first of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cancel_the_two_unacked_records_come_back_and_nothing_below_them() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let group = random_name("g");
        let mut client = server.client().await;
        publish_values(&mut client, &topic, (0..10).map(|i| format!("v{i}"))).await;

        let mut first = Consumer::start(&server, start(&topic, &group)).await;
        let received = first.take(10).await;
        first
            .ack(received.iter().filter(|r| !matches!(position(r).1, 3 | 6)))
            .await;
        // A cancel may overtake acks still in flight: wait until they were committed (up to
        // the first gap), then cancel.
        wait_for_commit(&server, &topic, &group, 0, 3).await;
        drop(first);

        let mut second = Consumer::start(&server, start(&topic, &group)).await;
        let again = second.take(7).await;
        let offsets: Vec<i64> = again.iter().map(|r| position(r).1).collect();
        assert_eq!(offsets, (3..10).collect::<Vec<_>>());
        assert!(
            again.iter().all(|r| r.delivery_attempt == 1),
            "a new stream counts anew"
        );
        second.close().await.expect("a clean end");
    })
    .await;
}

/// The offset `group` has committed in `topic`'s `partition`, read with OffsetFetch (a
/// consumer that never joins the group).
async fn committed(
    kafka: &streamgate_server::Kafka,
    topic: &str,
    group: &str,
    partition: i32,
) -> Option<i64> {
    let mut config = kafka.client_config();
    config.set("group.id", group);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().expect("a consumer");
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, partition);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .ok()?;
        match committed.find_partition(&topic, partition)?.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    })
    .await
    .expect("the lookup ran")
}

/// Waits until `group` has committed at least `offset` in `topic`'s `partition`.
async fn wait_for_commit(
    server: &TestServer,
    topic: &str,
    group: &str,
    partition: i32,
    offset: i64,
) {
    eventually(
        PATIENCE,
        &format!("group {group} commits {offset}"),
        async || {
            let seen = committed(&server.kafka, topic, group, partition).await;
            if seen.is_some_and(|o| o >= offset) {
                Ok(())
            } else {
                Err(seen)
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_outstanding_records_holds_delivery_until_acks_arrive() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, (0..12).map(|i| format!("v{i}"))).await;
        let mut consumer = Consumer::start(
            &server,
            ConsumeStart {
                max_outstanding_records: 5,
                ..start(&topic, &random_name("g"))
            },
        )
        .await;
        let held = consumer.take(5).await;
        assert_eq!(held.len(), 5, "never more than 5 outstanding");
        assert!(
            consumer.next_batch(Duration::from_secs(2)).await.is_none(),
            "nothing more until an ack"
        );
        consumer.ack(&held[..2]).await;
        let more = consumer.take(2).await;
        assert_eq!(more.len(), 2, "room for exactly two");
        assert!(consumer.next_batch(Duration::from_secs(2)).await.is_none());
        let offsets: Vec<i64> = held.iter().chain(&more).map(|r| position(r).1).collect();
        assert_eq!(offsets, (0..7).collect::<Vec<_>>());
        consumer.close().await.expect("a clean end");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_deadline_and_a_nack_redeliver_with_the_next_attempt() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(
            &mut client,
            &topic,
            ["late".to_owned(), "refused".to_owned()],
        )
        .await;
        let mut consumer = Consumer::start(
            &server,
            ConsumeStart {
                ack_deadline: Some(prost_types::Duration {
                    seconds: 2,
                    nanos: 0,
                }),
                ..start(&topic, &random_name("g"))
            },
        )
        .await;
        let first = consumer.take(2).await;
        assert_eq!(
            first.iter().map(value).collect::<Vec<_>>(),
            ["late", "refused"]
        );
        assert!(first.iter().all(|r| r.delivery_attempt == 1));
        consumer.nack(&first[1]).await;
        // The nack comes back at once, the unacked one after its 2 s deadline.
        let mut again: HashMap<String, u32> = HashMap::new();
        while again.len() < 2 {
            for record in consumer.take(1).await {
                again.insert(value(&record), record.delivery_attempt);
                consumer.ack([&record]).await;
            }
        }
        assert_eq!(again["refused"], 2);
        assert_eq!(again["late"], 2);
        consumer.close().await.expect("a clean end");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_record_comes_back_after_its_deadline_on_a_stream_where_nothing_else_happens() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["forgotten".to_owned()]).await;
        let mut consumer = Consumer::start(
            &server,
            ConsumeStart {
                ack_deadline: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..start(&topic, &random_name("g"))
            },
        )
        .await;
        let first = consumer.take(1).await;
        assert_eq!(first[0].delivery_attempt, 1);
        // No ack, no nack, no other record: only the deadline can bring it back.
        let again = consumer.take(1).await;
        assert_eq!(
            (value(&again[0]), again[0].delivery_attempt),
            ("forgotten".to_owned(), 2)
        );
        consumer.ack(&again).await;
        consumer.close().await.expect("a clean end");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_past_max_delivery_attempts_goes_to_the_dead_letter_topic() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let group = random_name("g");
        let mut client = server.client().await;
        publish_values(
            &mut client,
            &topic,
            ["poison".to_owned(), "fine".to_owned()],
        )
        .await;
        let options = ConsumeStart {
            max_delivery_attempts: 2,
            ..start(&topic, &group)
        };
        let mut consumer = Consumer::start(&server, options.clone()).await;
        let first = consumer.take(2).await;
        consumer.ack([&first[1]]).await;
        consumer.nack(&first[0]).await;
        let second = consumer.take(1).await;
        assert_eq!(
            (value(&second[0]).as_str(), second[0].delivery_attempt),
            ("poison", 2)
        );
        consumer.nack(&second[0]).await;

        // It lands in dlq.<n>.<topic>.<group> with its origin, and counts as acknowledged.
        let dead_letters = format!("dlq.{}.{topic}.{group}", topic.len());
        eventually(PATIENCE, "the dead-letter topic", async || {
            let listed = client
                .list_topics(proto::ListTopicsRequest::default())
                .await;
            listed.is_ok_and(|l| l.into_inner().topics.iter().any(|t| t.name == dead_letters))
        })
        .await;
        let mut request = subscribe_request(
            &dead_letters,
            None,
            Some(start_position::Position::Earliest(true)),
        );
        request.max_records = Some(1);
        let (_, letters) = crate::support::collect_all(
            client
                .subscribe(request)
                .await
                .expect("subscribe")
                .into_inner(),
        )
        .await;
        let letter = &letters[0];
        assert_eq!(letter.value.as_deref(), Some(&b"poison"[..]));
        let header = |key: &str| {
            letter
                .headers
                .iter()
                .find(|h| h.key == key)
                .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        };
        assert_eq!(header("x-original-topic").as_deref(), Some(topic.as_str()));
        assert_eq!(header("x-original-offset").as_deref(), Some("0"));
        assert!(header("x-exception-message").is_some_and(|m| m.contains("2 delivery attempts")));
        consumer.close().await.expect("a clean end");

        // Nothing of the two comes back to the group.
        publish_values(&mut client, &topic, ["after".to_owned()]).await;
        let mut next = Consumer::start(&server, options).await;
        assert_eq!(value(&next.take(1).await[0]), "after");
        next.close().await.expect("a clean end");
    })
    .await;
}

/// Two members, a rebalance while acks are outstanding: no record is lost, and acks sent
/// after the rebalance with the old assignment's ids commit nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_with_acks_outstanding_loses_nothing_and_stale_acks_are_ignored() {
    on_each_broker(async |server| {
        let topic = server.topic(2).await;
        let group = random_name("g");
        publish_many(&server, &topic, 40).await;

        // A holds all 40 unacked; then B joins.
        let mut a = Consumer::start(&server, start(&topic, &group)).await;
        let held = a.take(40).await;
        let mut b = Consumer::start(&server, start(&topic, &group)).await;
        // After the rebalance each holds one partition, and gets all of it again: nothing
        // was acked.
        let a_partitions = a.assigned(1).await;
        let b_partitions = b.assigned(1).await;
        assert!(a_partitions.is_disjoint(&b_partitions));
        let of = |partitions: &BTreeSet<i32>| {
            let records = held
                .iter()
                .map(position)
                .filter(|(p, _)| partitions.contains(p));
            records.collect::<BTreeSet<_>>()
        };
        let a_again = a.take(of(&a_partitions).len()).await;
        let b_got = b.take(of(&b_partitions).len()).await;
        assert_eq!(
            a_again.iter().map(position).collect::<BTreeSet<_>>(),
            of(&a_partitions)
        );
        assert_eq!(
            b_got.iter().map(position).collect::<BTreeSet<_>>(),
            of(&b_partitions)
        );
        assert!(a_again.iter().all(|r| r.delivery_attempt == 1));

        // A acks with the old ids: stale, nothing is committed.
        a.ack(&held).await;
        a.close().await.expect("a clean end");
        b.close().await.expect("a clean end");
        for partition in [0, 1] {
            let seen = committed(&server.kafka, &topic, &group, partition).await;
            assert!(
                seen.is_none_or(|o| o == 0),
                "partition {partition} committed {seen:?}"
            );
        }

        // So a new member gets all 40 again, acks them, and they are gone for good.
        let mut c = Consumer::start(&server, start(&topic, &group)).await;
        let all = c.take(40).await;
        let positions: BTreeSet<(i32, i64)> = all.iter().map(position).collect();
        assert_eq!(positions, held.iter().map(position).collect());
        c.ack(&all).await;
        c.close().await.expect("a clean end");
        for partition in [0, 1] {
            let end = positions.iter().filter(|(p, _)| *p == partition).count() as i64;
            assert_eq!(
                committed(&server.kafka, &topic, &group, partition)
                    .await
                    .unwrap_or(0),
                end
            );
        }
    })
    .await;
}

/// The server killed with SIGKILL mid-stream: every record not acked is delivered again by
/// the next server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_is_killed_every_unacked_record_comes_back() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let group = random_name("g");
        let mut client = server.client().await;
        publish_values(&mut client, &topic, (0..20).map(|i| format!("v{i}"))).await;
        let brokers = server.kafka.bootstrap_servers().to_owned();
        let args = ["--brokers", brokers.as_str(), "--supplier-stopped"];

        let process = ServerProcess::start(&args).await;
        let mut consumer = Consumer::open(process.url.clone(), start(&topic, &group))
            .await
            .expect("Consume opens");
        let received = consumer.take(20).await;
        consumer.ack(&received[..8]).await;
        consumer.ack(&received[12..]).await;
        wait_for_commit(&server, &topic, &group, 0, 8).await;
        process.kill().await;

        let process = ServerProcess::start(&args).await;
        let mut consumer = Consumer::open(process.url.clone(), start(&topic, &group))
            .await
            .expect("Consume opens");
        let again = consumer.take(12).await;
        let offsets: Vec<i64> = again.iter().map(|r| position(r).1).collect();
        assert_eq!(
            offsets,
            (8..20).collect::<Vec<_>>(),
            "8..12 unacked, the rest above the gap"
        );
        process.kill().await;
    })
    .await;
}

/// What a Consume stream refuses, with the code and the field or flag named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_what_to_fix() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let refused = |start: ConsumeStart| Consumer::open(server.url(), start);

        let status = refused(ConsumeStart {
            group: String::new(),
            ..start(&topic, "g")
        })
        .await
        .err()
        .expect("a group is required");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("start.group"), "{status:?}");

        let status = refused(ConsumeStart {
            max_outstanding_records: 1_000_000,
            ..start(&topic, "g")
        })
        .await
        .err()
        .expect("over the flag");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("--consume-max-outstanding"),
            "{status:?}"
        );

        let status = refused(start(&random_name("missing"), "g"))
            .await
            .err()
            .expect("an unknown topic");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");

        // The first request must be start.
        let (tx, rx) = mpsc::channel(1);
        tx.send(ConsumeRequest {
            request: Some(consume_request::Request::Ack(AckRequest::default())),
        })
        .await
        .expect("queue");
        let status = server
            .client()
            .await
            .consume(ReceiverStream::new(rx))
            .await
            .expect_err("ack before start");
        assert_eq!(status.code(), Code::InvalidArgument);

        // A made-up ack id ends the stream, naming it.
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["x".to_owned()]).await;
        let mut consumer = Consumer::start(&server, start(&topic, &random_name("g"))).await;
        consumer.take(1).await;
        consumer
            .request(consume_request::Request::Ack(AckRequest {
                ack_ids: vec!["not-an-id".into()],
            }))
            .await;
        let status = consumer.failure().await;
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("not-an-id"), "{status:?}");
    })
    .await;
}

/// The nack flood: a client nacks its one record in 200 requests that each repeat the id
/// 100 times, every delay shorter than the last. The record comes back once, at the last
/// nack's time; a request naming more ids than the stream may have outstanding ends the
/// stream with RESOURCE_EXHAUSTED naming that limit. (Before, every nack added a schedule
/// entry that stayed until it surfaced: memory grew by hundreds of MiB in seconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_flood_redelivers_once_and_too_many_ids_are_refused() {
    on_each_broker(async |server| {
        let topic = server.topic(1).await;
        let mut client = server.client().await;
        publish_values(&mut client, &topic, ["flooded".to_owned()]).await;
        let mut consumer = Consumer::start(
            &server,
            ConsumeStart {
                max_outstanding_records: 100,
                ..start(&topic, &random_name("g"))
            },
        )
        .await;
        let record = consumer.take(1).await.remove(0);
        for step in (0..200i32).rev() {
            consumer
                .request(consume_request::Request::Nack(NackRequest {
                    ack_ids: vec![record.ack_id.clone(); 100],
                    delay: Some(prost_types::Duration {
                        seconds: 0,
                        nanos: step * 5_000_000,
                    }),
                }))
                .await;
        }
        let again = consumer.take(1).await;
        assert_eq!(
            (value(&again[0]), again[0].delivery_attempt),
            ("flooded".to_owned(), 2)
        );
        assert!(
            consumer.next_batch(Duration::from_secs(2)).await.is_none(),
            "one redelivery, not one per nack"
        );
        consumer
            .request(consume_request::Request::Nack(NackRequest {
                ack_ids: vec![again[0].ack_id.clone(); 101],
                delay: None,
            }))
            .await;
        let status = consumer.failure().await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("max_outstanding_records"),
            "{status:?}"
        );
    })
    .await;
}

/// Opens a Consume stream as the principal of `token` and returns its first answer: the
/// stream, or the status it was refused with.
async fn consume_as(
    server: &TestServer,
    token: &str,
    start: ConsumeStart,
) -> Result<tonic::Streaming<proto::ConsumeResponse>, tonic::Status> {
    let (tx, rx) = mpsc::channel(1);
    tx.send(ConsumeRequest {
        request: Some(consume_request::Request::Start(start)),
    })
    .await
    .expect("queue start");
    let mut client = server.client_with_token(Some(token)).await;
    let opened = client.consume(ReceiverStream::new(rx)).await;
    drop(tx);
    opened.map(tonic::Response::into_inner)
}

/// Dead-letter topics are the caller's own and the server does not make them for anyone:
/// a principal with a group but no right to publish to its dead-letter topic is refused
/// before the stream starts (not when the first record dies); with `publish:dlq.*` the
/// topic is created at the start, under its unambiguous name; past
/// `--max-dead-letter-topics` a stream whose topic is missing is refused, naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_topics_are_created_only_for_who_may_and_only_so_many() {
    let file = streamgate_testkit::AuthFile::new(&[
        (
            "reader",
            "reader-token",
            &["subscribe:*", "group:*", "topics"],
        ),
        (
            "owner",
            "owner-token",
            &["subscribe:*", "group:*", "topics", "publish:dlq.*"],
        ),
    ]);
    let configure = |s: &mut streamgate_server::Settings| {
        file.apply(s);
        s.limits.max_dead_letter_topics = 1;
    };
    streamgate_testkit::on_each_broker_with(configure, |server| async move {
        let topic = server.topic(1).await;
        let with_dead_letters = |group: &str| ConsumeStart {
            max_delivery_attempts: 2,
            ..start(&topic, group)
        };
        let group = random_name("g");
        let refused = consume_as(&server, "reader-token", with_dead_letters(&group))
            .await
            .expect_err("no right to create the dead-letter topic");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains("publish:dlq."), "{refused:?}");

        let owned = consume_as(&server, "owner-token", with_dead_letters(&group))
            .await
            .expect("created at the start");
        drop(owned);
        let dead_letters = format!("dlq.{}.{topic}.{group}", topic.len());
        let mut client = server.client_with_token(server.admin_token).await;
        eventually(PATIENCE, "the dead-letter topic listed", async || {
            let listed = client
                .list_topics(proto::ListTopicsRequest::default())
                .await
                .expect("lists")
                .into_inner();
            listed.topics.iter().any(|t| t.name == dead_letters)
        })
        .await;

        let over = consume_as(&server, "owner-token", with_dead_letters(&random_name("g")))
            .await
            .expect_err("the server made its one dead-letter topic");
        assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
        assert!(
            over.message().contains("--max-dead-letter-topics"),
            "{over:?}"
        );
    })
    .await;
}
