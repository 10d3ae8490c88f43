"""Consume: acknowledged consumption. What is acked is committed as a contiguous prefix per
partition; what is not comes back (after a reconnect, a nack, an ack deadline), and a
record past max_delivery_attempts goes to the dead-letter topic."""

import pytest

import streamgate_client as sg
from support import PATIENCE, eventually, read_until, take

# Long enough that no delivery comes again by itself during a test.
NO_REDELIVERY = 3600


def positions(deliveries):
    return [(d.partition, d.offset) for d in deliveries]


def publish_spread(publish, count):
    """`count` records v0..v<count-1> keyed k0.. (spread over partitions by key hash)."""
    return [publish([f"v{i}"], key=f"k{i}")[0] for i in range(count)]


def test_a_reconnect_gets_back_exactly_the_unacked_records_above_each_first_gap(
        client, new_topic, name):
    topic, publish = new_topic
    published = {(a.partition, a.offset) for a in publish_spread(publish, 24)}
    group = name("group")

    with client.consume(topic, group, start="earliest", ack_deadline=NO_REDELIVERY,
                        timeout=PATIENCE) as first:
        delivered = take(first, len(published))
        assert sorted(positions(delivered)) == sorted(published), "each record once"
        assert all(d.delivery_attempt == 1 for d in delivered)
        acked = [d for d in delivered if d.offset % 3 != 1]
        first.ack(reversed(acked))  # in any order
    # Leaving the block half-closed the stream: the server committed each partition's acked
    # prefix and ended the stream before close() returned.

    # The server promises no sparse acks: a partition resumes at its first unacked record,
    # so the acked records above that gap come back too, and nothing below it.
    acked = set(positions(acked))
    expected = set()
    for partition in {p for p, _ in published}:
        gaps = sorted(o for p, o in published - acked if p == partition)
        if gaps:
            expected |= {(p, o) for p, o in published if p == partition and o >= gaps[0]}
    assert published - acked <= expected
    assert expected & acked, "the test needs a partition with acked records above a gap"

    with client.consume(topic, group, start="earliest", ack_deadline=NO_REDELIVERY,
                        timeout=PATIENCE) as second:
        again = take(second, len(expected))
        assert sorted(positions(again)) == sorted(expected)
        assert all(d.delivery_attempt == 1 for d in again), "a new stream counts anew"
        # Nothing else: a marker published to the end of every partition is the next record
        # of that partition, so anything else still due would arrive before the markers.
        markers = {(a.partition, a.offset) for a in (
            client.publish(topic, "marker", partition=p.partition)
            for p in second.assignment.partitions)}
        rest = read_until(second, lambda seen: markers <= set(positions(seen)))
        assert sorted(positions(rest)) == sorted(markers)
        second.ack(again + rest)


def test_a_nack_redelivers_with_the_next_attempt(client, new_topic, name):
    topic, publish = new_topic
    publish(["a", "b"], key="k")
    with client.consume(topic, name("group"), start="earliest", ack_deadline=NO_REDELIVERY,
                        timeout=PATIENCE) as consumer:
        a, b = take(consumer, 2)
        assert (a.value, b.value) == (b"a", b"b")
        a.nack()
        b.ack()
        (again,) = take(consumer, 1)
        assert (again.offset, again.value, again.delivery_attempt) == (a.offset, b"a", 2)
        assert again.ack_id  # ids are opaque; use the newest one
        again.ack()


def test_an_unacked_record_comes_again_after_its_ack_deadline(client, new_topic, name):
    topic, publish = new_topic
    publish(["slow"])
    with client.consume(topic, name("group"), start="earliest", ack_deadline=1,
                        timeout=20) as consumer:
        first, again = take(consumer, 2)  # the second delivery waits for the deadline
        assert positions([first]) == positions([again])
        assert (first.delivery_attempt, again.delivery_attempt) == (1, 2)
        consumer.ack(again.ack_id)  # by id works too


def test_a_record_past_max_delivery_attempts_goes_to_the_dead_letter_topic(
        client, new_topic, name):
    topic, publish = new_topic
    publish(["poison", "after"], key="k")
    group = name("group")
    with client.consume(topic, group, start="earliest", max_delivery_attempts=2,
                        ack_deadline=NO_REDELIVERY, timeout=PATIENCE) as consumer:
        poison, after = take(consumer, 2)
        after.ack()
        poison.nack()
        (retry,) = take(consumer, 1)
        assert (retry.value, retry.delivery_attempt) == (b"poison", 2)
        retry.nack()  # the last attempt: it goes to error.<topic>.<group>, counted as acked

        # The server creates the dead-letter topic when it first needs it.
        def first_letter():
            with client.subscribe(f"error.{topic}.{group}", start="earliest",
                                  timeout=PATIENCE) as letters:
                return take(letters, 1)[0]

        letter = eventually(first_letter, retry_on=sg.NotFound)
        assert letter.value == b"poison"
        headers = {h.key: h.value for h in letter.headers}
        assert headers.get("x-original-topic") == topic.encode()


def test_bad_requests_raise_typed_errors(client, new_topic, name):
    topic, publish = new_topic
    publish(["x"])
    cases = [
        (dict(topics=topic, group=""), sg.InvalidArgument),
        (dict(topics=name("missing"), group=name("g")), sg.NotFound),
        (dict(topics=topic, group=name("g"), ack_deadline=0.5), sg.InvalidArgument),
        (dict(topics=topic, group=name("g"), max_outstanding_records=10**9),
         sg.ResourceExhausted),
    ]
    for kwargs, error in cases:
        with pytest.raises(error) as raised:
            with client.consume(timeout=PATIENCE, **kwargs) as consumer:
                next(consumer)
        assert raised.value.code == error.code and raised.value.message


def test_an_unknown_ack_id_ends_the_stream_with_invalid_argument(client, new_topic, name):
    topic, publish = new_topic
    publish(["x"])
    with pytest.raises(sg.InvalidArgument, match="not-an-id"):
        with client.consume(topic, name("group"), start="earliest",
                            timeout=PATIENCE) as consumer:
            take(consumer, 1)
            consumer.ack("not-an-id")
            for _ in consumer:
                pass
