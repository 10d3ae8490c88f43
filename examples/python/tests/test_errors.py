"""Typed errors: each status the API documents arrives as its StreamgateError subclass, from
unary calls and streams alike."""

import os
import socket

import pytest

import streamgate_client as sg
from support import PATIENCE, TOPIC

VIEWER_TOKEN = os.environ.get("STREAMGATE_TEST_VIEWER_TOKEN")


def test_a_bad_topic_name_is_invalid_argument(client):
    with pytest.raises(sg.InvalidArgument, match="topic name") as raised:
        client.publish("no spaces allowed", "x")
    assert isinstance(raised.value, sg.StreamgateError)
    assert raised.value.code == sg.InvalidArgument.code
    assert "topic name" in raised.value.message
    with pytest.raises(sg.InvalidArgument):  # from a stream: raised while iterating
        next(iter(client.subscribe("..", timeout=PATIENCE)))


def test_a_missing_topic_is_not_found(client, name):
    with pytest.raises(sg.NotFound, match="does not exist"):
        next(client.subscribe(name("missing"), start="earliest", timeout=PATIENCE))


def test_other_refusals(client):
    with pytest.raises(sg.InvalidArgument):
        client.publish(TOPIC, "x", partition=-1)
    with pytest.raises(sg.InvalidArgument):
        client.publish(TOPIC)  # no payload
    with pytest.raises(sg.ResourceExhausted, match="--max-message-bytes"):
        client.publish(TOPIC, b"x" * (1024 * 1024 + 1))
    with pytest.raises(sg.InvalidArgument):
        next(client.watch_page_stats(rolling=0, timeout=PATIENCE))


def test_a_deadline_is_deadline_exceeded(client, new_topic):
    topic, publish = new_topic
    publish(["only"])
    with client.subscribe(topic, start="latest", timeout=1) as stream:  # nothing will come
        with pytest.raises(sg.DeadlineExceeded):
            next(stream)


def test_an_unreachable_server_is_unavailable():
    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with sg.Client(f"127.0.0.1:{port}", timeout=5) as nowhere:
        with pytest.raises(sg.Unavailable):
            nowhere.list_topics()


@pytest.mark.skipif(not VIEWER_TOKEN, reason="STREAMGATE_TEST_VIEWER_TOKEN is not set: the "
                    "server runs without --auth-file (.ci/test-python sets both)")
def test_tokens_unauthenticated_and_permission_denied(client):
    with sg.Client(client.server, token="") as anonymous:  # "" sends no token at all
        with pytest.raises(sg.Unauthenticated):
            anonymous.list_topics()
        assert anonymous.health() == "SERVING", "health needs no token"
    with sg.Client(client.server, token="not-a-known-token") as stranger:
        with pytest.raises(sg.Unauthenticated):
            stranger.list_topics()
        with pytest.raises(sg.Unauthenticated):
            next(stranger.subscribe(TOPIC, timeout=PATIENCE))
    with sg.Client(client.server, token=VIEWER_TOKEN) as viewer:  # allowed: topics only
        assert TOPIC in [t.name for t in viewer.list_topics()]
        with pytest.raises(sg.PermissionDenied, match=f"publish:{TOPIC}"):
            viewer.publish(TOPIC, "x")
        # A caller that may publish nowhere is refused before its stream takes a slot.
        with pytest.raises(sg.PermissionDenied, match="publish:"):
            list(viewer.publish_stream([{"topic": TOPIC, "value": "x"}],
                                       timeout=PATIENCE))
