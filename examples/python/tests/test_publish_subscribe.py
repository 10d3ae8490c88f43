"""Publish and Subscribe: what is published reads back exactly, where Publish said."""

import datetime

import pytest
import streamgate_client as sg
from support import PATIENCE, TOPIC, take

UTC = datetime.timezone.utc


def find(client, topic, keys):
    """Reads `topic` from earliest until a record with each key arrived; {key: Record}."""
    found = {}
    with client.subscribe(topic, start="earliest", timeout=PATIENCE) as stream:
        for record in stream:
            if record.key in keys:
                assert record.key not in found, "each key once"
                found[record.key] = record
                if len(found) == len(keys):
                    return found, stream.assignment
    raise AssertionError(f"the stream ended before every key arrived: {found.keys()}")


def test_raw_record_round_trip(client, name):
    key = name("raw").encode()
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    headers = [("trace", b"\x00\x01"), ("h", "first"), ("h", "second")]
    ack = client.publish(TOPIC, b"hello \xff", key=key, headers=headers, timestamp=when)
    assert ack.topic == TOPIC
    assert ack.timestamp.ToDatetime(tzinfo=UTC) == when

    records, assignment = find(client, TOPIC, [key])
    record = records[key]
    assert (record.partition, record.offset) == (ack.partition, ack.offset)
    assert record.value == b"hello \xff"
    assert [(h.key, h.value) for h in record.headers] == [
        ("trace", b"\x00\x01"), ("h", b"first"), ("h", b"second")]
    assert record.timestamp.ToDatetime(tzinfo=UTC) == when
    assert record.timestamp_type == sg.event_pb2.TIMESTAMP_TYPE_CREATE_TIME
    assert not record.HasField("page_event"), "not JSON, so not a PageEvent"
    # From earliest: every partition of R1, each starting at its oldest record.
    starts = {p.partition: p for p in assignment.partitions}
    assert ack.partition in starts
    assert all(p.topic == TOPIC and p.start_offset == p.low_watermark
               for p in starts.values())


def test_fields_sends_only_those_record_fields(client, name):
    key = name("masked").encode()
    ack = client.publish(TOPIC, b"v", key=key, headers=[("trace", b"t")])
    with client.subscribe(TOPIC, start=ack.offset, fields=["key", "value", "offset"],
                          timeout=PATIENCE) as stream:
        for record in stream:
            if record.key == key:
                break
    assert (record.offset, record.value) == (ack.offset, b"v")
    assert not record.topic and not record.headers and not record.HasField("timestamp")
    with pytest.raises(sg.InvalidArgument, match="read_mask"):
        with client.subscribe(TOPIC, fields=["nope"], timeout=PATIENCE) as stream:
            stream.assignment


def test_page_event_round_trip(client, name):
    page = name("page")
    date = datetime.datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    ack = client.publish(TOPIC, page_event=sg.page_event(page, user="U7", duration_ms=96,
                                                         date=date))
    records, _ = find(client, TOPIC, [page.encode()])  # keyed by page name by default
    record = records[page.encode()]
    assert (record.partition, record.offset) == (ack.partition, ack.offset)
    event = record.page_event
    assert (event.name, event.user, event.duration_ms) == (page, "U7", 96)
    assert event.date.ToDatetime(tzinfo=UTC) == date
    assert ("content-type", b"application/json") in [(h.key, h.value) for h in record.headers]
    # On Kafka it is the seed application's JSON.
    assert record.value.startswith(b'{"name":"' + page.encode() + b'"')


def test_page_event_defaults_are_filled(client, name):
    page = name("defaults")
    client.publish(TOPIC, page_event=page, key="explicit-" + page)
    key = f"explicit-{page}".encode()
    record = find(client, TOPIC, [key])[0][key]
    assert record.page_event.name == page
    assert record.page_event.user in ("U1", "U2")
    assert 0 <= record.page_event.duration_ms <= 9000
    assert record.page_event.HasField("date")


def test_stop_at_end_reads_a_fresh_topic_and_ends(client, new_topic):
    topic, publish = new_topic
    # One call at a time, so that every record is its own batch on every broker.
    acks = publish([f"v{i}" for i in range(5)], key="same-key")
    assert len({a.partition for a in acks}) == 1, "one key, one partition"
    assert [a.offset for a in acks] == sorted(a.offset for a in acks)

    stream = client.subscribe(topic, start="earliest", stop_at_end=True, timeout=PATIENCE)
    records = list(stream)  # ends by itself, with status OK
    assert [(r.partition, r.offset, r.value) for r in records] == [
        (a.partition, a.offset, f"v{i}".encode()) for i, a in enumerate(acks)]
    assert all(r.key == b"same-key" for r in records)


def test_start_offset_and_from_end(client, new_topic):
    topic, publish = new_topic
    acks = publish([f"v{i}" for i in range(6)], partition=0)
    assert {a.partition for a in acks} == {0}

    with client.subscribe(topic, start=acks[2].offset, timeout=PATIENCE) as stream:
        assert [r.value for r in take(stream, 4)] == [b"v2", b"v3", b"v4", b"v5"]
        partition0 = [p for p in stream.assignment.partitions if p.partition == 0][0]
        assert partition0.start_offset == acks[2].offset
    with client.subscribe(topic, start=-2, timeout=PATIENCE) as stream:
        assert [r.value for r in take(stream, 2)] == [b"v4", b"v5"]


def test_a_group_continues_where_its_last_stream_ended(client, new_topic, name):
    topic, publish = new_topic
    acks = publish([f"v{i}" for i in range(7)])
    group = name("group")
    # max_records ends the stream once exactly those records' offsets are committed.
    first = list(client.subscribe(topic, group=group, start="earliest", max_records=4,
                                  timeout=PATIENCE))
    second = list(client.subscribe(topic, group=group, max_records=3, timeout=PATIENCE))
    assert len(first) == 4 and len(second) == 3
    positions = [(r.partition, r.offset) for r in first + second]
    assert sorted(positions) == sorted((a.partition, a.offset) for a in acks), \
        "every record once: nothing skipped, nothing repeated"
