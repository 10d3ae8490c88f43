"""PublishStream: one result per record, in request order; a rejected record is an error
result with its status code, and the stream goes on."""

import datetime

import pytest

import streamgate_client as sg
from support import PATIENCE, TOPIC, take

UTC = datetime.timezone.utc
ONE_MIB = 1024 * 1024  # the server's default --max-message-bytes


def bad_record(kind, key):
    if kind == "future timestamp":  # beyond --max-timestamp-ahead (default 1 h)
        late = datetime.datetime.now(UTC) + datetime.timedelta(hours=3)
        request = sg.publish_request(TOPIC, "too early", key=key, timestamp=late)
        return request, sg.InvalidArgument
    if kind == "bad topic name":
        return sg.publish_request("not a topic!", "x", key=key), sg.InvalidArgument
    if kind == "over the size limit":
        request = sg.publish_request(TOPIC, b"x" * (ONE_MIB + 1), key=key)
        return request, sg.ResourceExhausted
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["future timestamp", "bad topic name", "over the size limit"])
def test_one_rejected_record_among_good_ones(client, name, kind):
    key = name("key")
    bad, error_type = bad_record(kind, key)
    records = [{"topic": TOPIC, "value": f"good {i}", "key": key} for i in range(5)]
    records.insert(2, bad)

    outcomes = list(client.publish_stream(records, timeout=PATIENCE))

    assert [o.sequence for o in outcomes] == list(range(6)), "one result per record, in order"
    errors = [o for o in outcomes if not o.ok]
    assert [o.sequence for o in errors] == [2]
    error = errors[0].error
    assert isinstance(error, error_type) and isinstance(error, sg.StreamgateError)
    assert error.code == error_type.code
    assert error.message
    acks = [o.ack for o in outcomes if o.ok]
    assert all(a.topic == TOPIC for a in acks)
    # One key, one partition: the offsets follow the request order.
    assert len({a.partition for a in acks}) == 1
    offsets = [a.offset for a in acks]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5


def test_records_come_back_in_order(client, new_topic):
    topic, publish = new_topic
    publish(["first"], key="k")  # creates the topic
    outcomes = list(client.publish_stream(
        ({"topic": topic, "value": f"v{i}", "key": "k"} for i in range(200)),
        timeout=PATIENCE))
    assert all(o.ok for o in outcomes)
    # Not stop_at_end: on Tansu the end offset counts batches, not records.
    with client.subscribe(topic, start="earliest", timeout=PATIENCE) as stream:
        values = [r.value for r in take(stream, 201)]
    assert values == [b"first"] + [f"v{i}".encode() for i in range(200)]

