"""Helpers shared by the tests."""

import os
import time

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
    """Items of `stream` until done(items_so_far) is true (the stream's deadline bounds it)."""
    items = []
    for item in stream:
        items.append(item)
        if done(items):
            return items
    raise AssertionError(f"the stream ended before the condition held ({len(items)} items)")


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
