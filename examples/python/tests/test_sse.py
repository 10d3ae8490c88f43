"""Server-Sent Events read with the standard library (sse_records.py): a records stream
that the server ends is resumed with its last event id, and every record comes once."""

import base64
import os
import pathlib
import sys
import urllib.error

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import sse_records  # noqa: E402

from conftest import SERVER  # noqa: E402


def values(events):
    return [base64.b64decode(record["value"]).decode() for _, record in events]


TOKEN = os.environ.get("STREAMGATE_TOKEN")


def test_a_records_stream_resumes_after_its_last_event(client, new_topic):
    topic, publish = new_topic
    sent = [f"sse-{i}" for i in range(7)]
    publish(sent)
    first = list(sse_records.follow(SERVER, topic, start="earliest", fields=["value"],
                                    max_records=3, token=TOKEN))
    assert len(first) == 3
    last_id = first[-1][0]
    rest = list(sse_records.follow(SERVER, topic, start="earliest", fields=["value"],
                                   max_records=4, last_event_id=last_id, token=TOKEN))
    assert sorted(values(first) + values(rest)) == sorted(sent)
    assert set(first[0][1]) == {"partition", "offset", "value"}


def test_without_the_token_the_stream_is_refused(client, new_topic):
    if not TOKEN:
        pytest.skip("the server runs without authentication")
    topic, publish = new_topic
    publish(["x"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        list(sse_records.follow(SERVER, topic, start="earliest"))
    assert refused.value.code == 401
