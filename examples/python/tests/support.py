"""Helpers shared by the tests."""

import os
import time

import streamgate_client as sg

# A topic that exists on the server (the server's --log-topic by default), and the topic
# whose PageEvents the analytics count (--supplier-topic): .ci/test-python renames them
# when the server shares a broker with others.
TOPIC = os.environ.get("STREAMGATE_TEST_TOPIC", "R1")
PAGE_TOPIC = os.environ.get("STREAMGATE_TEST_PAGE_TOPIC", "R2")

# Deadline of every stream a test reads: long enough for a consumer group join and a
# rebalance on a real broker (Tansu joins groups in about 3 s). Never a measure of speed.
PATIENCE = 60.0


def take(stream, count):
    """The next `count` items of `stream` (which must carry a deadline)."""
    items = []
    for item in stream:
        items.append(item)
        if len(items) == count:
            return items
    raise AssertionError(f"the stream ended after {len(items)} of {count} items")


def read_until(stream, done):
    """Items of `stream` until done(items_so_far) is true (the stream's deadline bounds it).
    A stream that fails or ends first fails the test with what it had sent, the last item
    in full (up to 2000 characters): what a diagnosis of a stage that fell behind needs."""
    items = []
    try:
        for item in stream:
            items.append(item)
            if done(items):
                return items
    except sg.StreamgateError as error:
        raise AssertionError(f"the stream failed before the condition held ({error}); "
                             f"{_received(items)}") from error
    raise AssertionError(f"the stream ended before the condition held; {_received(items)}")


def _received(items):
    last = str(items[-1])[:2000] if items else "nothing"
    return f"{len(items)} items received, the last: {last}"


def eventually(attempt, retry_on, timeout=PATIENCE, pause=0.1):
    """attempt()'s result, retrying while it raises `retry_on` (the condition does not hold
    yet), for at most `timeout` seconds; then its last error is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except retry_on:
            if time.monotonic() >= deadline:
                raise
        time.sleep(pause)  # between polls of a condition, not a wait for it
