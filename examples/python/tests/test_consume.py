"""Consume: acknowledged consumption. What is acked is committed as a contiguous prefix per
partition; what is not comes back (after a reconnect, a nack, an ack deadline), and a
record past max_delivery_attempts goes to the dead-letter topic."""

import os
import pathlib
import selectors
import signal
import subprocess
import sys
import threading
import time

import pytest

import streamgate_client as sg
from conftest import SERVER
from support import PATIENCE, eventually, read_until, take

EXAMPLES = pathlib.Path(__file__).resolve().parents[1]

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
        retry.nack()  # the last attempt: it goes to the dead-letter topic, counted as acked

        # The server created the dead-letter topic when the stream started.
        def first_letter():
            with client.subscribe(f"dlq.{len(topic)}.{topic}.{group}", start="earliest",
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


def assert_resumes_after(client, topic, group, acked):
    """The group's next stream starts above `acked` (a delivery of partition 0, the only
    partition with records): the half-close committed it."""
    marker = client.publish(topic, "marker", partition=0)
    with client.consume(topic, group, start="earliest", ack_deadline=NO_REDELIVERY,
                        timeout=PATIENCE) as consumer:
        (first,) = take(consumer, 1)
    assert first.partition == 0 and acked.offset < first.offset <= marker.offset, \
        f"the group resumed at {first}, not above {acked}"


def test_close_from_another_thread_ends_a_reader_waiting_for_a_delivery(
        client, new_topic, name):
    topic, publish = new_topic
    publish(["a"], partition=0)
    group = name("group")
    consumer = client.consume(topic, group, start="earliest", ack_deadline=NO_REDELIVERY,
                              timeout=PATIENCE)
    taken, failures = [], []
    acked = threading.Event()

    def read():
        try:
            for delivery in consumer:  # after "a", waits for a record that never comes
                delivery.ack()
                taken.append(delivery)
                acked.set()
        except BaseException as error:  # whatever it was, the test reports it
            failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert acked.wait(PATIENCE), "no delivery within the stream's deadline"
        consumer.close()  # the reader is waiting in next() meanwhile
        reader.join(PATIENCE)
        assert not reader.is_alive(), "the reader still waits after close() returned"
        assert failures == []
        consumer.close()  # again: nothing more happens
    finally:
        consumer.cancel()  # only matters if the test failed with the reader waiting
        reader.join(PATIENCE)
    assert [d.value for d in taken] == [b"a"]
    assert_resumes_after(client, topic, group, taken[0])


def read_line(process, stream, deadline):
    """The next line `process` writes to `stream` (a pipe, unbuffered), waiting until the
    monotonic `deadline` at most; None at its end."""
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                process.kill()
                raise AssertionError(f"no line from {process.args} in time (so far {line!r})")
            byte = os.read(stream.fileno(), 1)
            if not byte:
                return None
            line += byte
    return line.decode().rstrip("\n")


def test_consume_py_exits_130_on_ctrl_c_and_commits_what_it_acked(client, new_topic, name):
    topic, publish = new_topic
    first, _ = publish(["first", "second"], partition=0)
    group = name("group")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A child inherits an ignored SIGINT (as in a test run started in the background of a
    # non-interactive shell), and Python then keeps ignoring it; a handled one is reset.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "consume.py"), topic, group, "--server", SERVER],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        deadline = time.monotonic() + PATIENCE
        # consume.py prints a record before it acks it: once "second" is printed, "first"
        # was acked, and the script is handling "second" or waiting for a third record.
        assert read_line(process, process.stdout, deadline) == "first"
        assert read_line(process, process.stdout, deadline) == "second"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode == 130, stderr.decode()
    assert_resumes_after(client, topic, group, first)
