"""Shared fixtures. The tests talk to the server named by STREAMGATE_SERVER
(http://HOST:PORT, https://HOST:PORT or HOST:PORT); without it, every test that needs a
server is skipped. .ci/test-python starts a server and sets it.

Rules the tests keep: they wait on conditions, each wait bounded by a gRPC deadline
(PATIENCE), never on sleeps, and never assert timing; names are unique per run so the tests
can run again against the same server.
"""

import os
import pathlib
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import streamgate_client as sg  # noqa: E402

RUN = uuid.uuid4().hex[:8]
SERVER = os.environ.get("STREAMGATE_SERVER")


def pytest_collection_modifyitems(config, items):
    if SERVER:
        return
    skip = pytest.mark.skip(reason="STREAMGATE_SERVER is not set: start streamgate-server "
                                   "(e.g. with .ci/test-python) and point it there")
    for item in items:
        if "client" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def client():
    with sg.Client(SERVER) as client:
        yield client


@pytest.fixture
def name(request):
    """A unique name for this test in this run: name("topic") -> "py-<run>-<test>-topic"."""
    test = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return lambda what: f"py-{RUN}-{test}-{what}"


@pytest.fixture
def new_topic(client, name):
    """Creates a fresh topic by publishing its first records (the server must run with
    --auto-create-topics) and returns (topic, acks): publish(values, **kw) publishes one record
    per value, one call at a time, and returns their PublishResponses."""
    topic = name("topic")

    def publish(values, **kw):
        acks = []
        for value in values:
            try:
                acks.append(client.publish(topic, value, **kw))
            except sg.NotFound:
                pytest.skip("the server refuses Publish to a new topic: start it with "
                            "--auto-create-topics (as .ci/test-python does)")
        return acks

    return topic, publish

