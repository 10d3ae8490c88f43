"""Filters and decoded values: a CEL filter sends only the records it matches (Subscribe and
Consume), values published as JSON read back decoded, and a bad filter is InvalidArgument
with the server's "filter: ..." message."""

import json

import pytest

import streamgate_client as sg
from support import PATIENCE, take

# Amounts of the orders published, in order; the filter keeps those above 1000.
AMOUNTS = [5, 1200, 999, 1000, 25000, 1001, 40]
FILTER = "value.amount > 1000"


def publish_orders(publish):
    """Publishes one JSON order per amount, all with one key (so to one partition, in order);
    returns [(ack, order)]."""
    orders = [{"id": f"o-{i}", "amount": amount} for i, amount in enumerate(AMOUNTS)]
    return [(publish([None], json=order, key="orders")[0], order) for order in orders]


def large(published):
    return [(ack, order) for ack, order in published if order["amount"] > 1000]


def test_a_filter_sends_exactly_the_records_it_matches(client, new_topic):
    topic, publish = new_topic
    published = publish_orders(publish)
    expected = large(published)
    assert len(expected) == 3

    # max_records counts the records sent: the stream ends after the matches.
    records = list(client.subscribe(topic, start="earliest", filter=FILTER, decode=True,
                                    max_records=len(expected), timeout=PATIENCE))
    assert [(r.partition, r.offset) for r in records] == [
        (ack.partition, ack.offset) for ack, _ in expected]
    assert [sg.decoded(r) for r in records] == [order for _, order in expected]
    # On a topic without a schema, json= is written as compact JSON.
    assert [json.loads(r.value) for r in records] == [order for _, order in expected]
    assert all(not r.decode_error for r in records)

    # To the end of the topic: nothing else matches, the last record included.
    rest = list(client.subscribe(topic, start="earliest", filter=FILTER, stop_at_end=True,
                                 timeout=PATIENCE))
    assert [r.offset for r in rest] == [ack.offset for ack, _ in expected]
    assert not any(r.HasField("decoded") for r in rest), "decoded only with decode=True"


def test_a_filter_on_consume_delivers_only_matches(client, new_topic, name):
    topic, publish = new_topic
    expected = large(publish_orders(publish))
    with client.consume(topic, name("group"), start="earliest", filter=FILTER, decode=True,
                        timeout=PATIENCE) as consumer:
        deliveries = take(consumer, len(expected))
        consumer.ack(deliveries)
    assert [(d.partition, d.offset) for d in deliveries] == [
        (ack.partition, ack.offset) for ack, _ in expected]
    assert [d.decoded for d in deliveries] == [order for _, order in expected]


@pytest.mark.parametrize("expression, words", [
    ("value.amount >", "syntax"),
    ("vaule.amount > 1000", "vaule"),
])
def test_a_bad_filter_is_invalid_argument(client, new_topic, name, expression, words):
    topic, publish = new_topic
    publish(["x"])
    with pytest.raises(sg.InvalidArgument, match="filter:") as raised:
        with client.subscribe(topic, start="earliest", filter=expression,
                              timeout=PATIENCE) as stream:
            next(stream)
    assert raised.value.message.startswith("filter:"), raised.value.message
    assert words in raised.value.message
    with pytest.raises(sg.InvalidArgument, match="filter:"):
        with client.consume(topic, name("group"), filter=expression,
                            timeout=PATIENCE) as consumer:
            next(consumer)
