"""The client's conversions, without a server."""

import datetime

import grpc
import pytest

import streamgate_client as sg
from streamgate_client.client import _parse_server


@pytest.mark.parametrize("server, target, tls", [
    ("http://127.0.0.1:8080", "127.0.0.1:8080", False),
    ("https://gateway.example:8443", "gateway.example:8443", True),
    ("HTTPS://gateway.example", "gateway.example:443", True),
    ("127.0.0.1:9000", "127.0.0.1:9000", False),
    ("http://[::1]:8080/", "[::1]:8080", False),
])
def test_server_forms(server, target, tls):
    assert _parse_server(server) == (target, tls)


@pytest.mark.parametrize("server", ["ftp://host:1", "http://host:1/path", "http://:80"])
def test_bad_servers_are_refused(server):
    with pytest.raises(ValueError):
        _parse_server(server)


def test_the_server_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("STREAMGATE_SERVER", "127.0.0.1:1234")
    with sg.Client() as client:
        assert client.server == "127.0.0.1:1234"
    monkeypatch.delenv("STREAMGATE_SERVER")
    with sg.Client() as client:
        assert client.server == "http://127.0.0.1:8080"


def test_tls_settings_need_https():
    with pytest.raises(ValueError):
        sg.Client("http://127.0.0.1:8080", root_certificates=b"pem")


def test_start_positions():
    assert sg.start_position("earliest").earliest
    assert sg.start_position("latest").latest
    assert sg.start_position(0).WhichOneof("position") == "offset"
    assert sg.start_position(-5).from_end == 5
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert sg.start_position(when).timestamp.ToDatetime(tzinfo=datetime.timezone.utc) == when
    assert sg.start_position(None) is None
    for bad in ("first", True, 1.5):
        with pytest.raises(ValueError):
            sg.start_position(bad)


def test_publish_requests():
    request = sg.publish_request("R1", "v", key="k", headers={"a": "1"}, partition=2)
    assert (request.value, request.key, request.partition) == (b"v", b"k", 2)
    assert [(h.key, h.value) for h in request.headers] == [("a", b"1")]
    assert not request.HasField("timestamp")
    named = sg.publish_request("R1", page_event="P1")
    assert named.WhichOneof("payload") == "page_event" and not named.HasField("key")
    event = sg.page_event("P2", duration_ms=0)
    assert event.HasField("duration_ms") and not event.HasField("user")
    with pytest.raises(TypeError):
        sg.publish_request("R1", "v", page_event="P1")


def test_error_mapping():
    assert type(sg.error_for(grpc.StatusCode.UNAUTHENTICATED, "m")) is sg.Unauthenticated
    assert type(sg.error_for(9, "m")) is sg.FailedPrecondition
    error = sg.error_for(14, "Kafka did not answer")
    assert isinstance(error, sg.Unavailable) and str(error) == "UNAVAILABLE: Kafka did not answer"


def test_json_values_round_trip():
    doc = {"id": "o-1", "amount": 1200, "rate": 0.5, "tags": ["a", None, True], "nested": {}}
    value = sg.json_value(doc)
    assert value.struct_value.fields["amount"].number_value == 1200
    assert sg.from_json_value(value) == doc
    assert type(sg.from_json_value(value)["amount"]) is int, "a whole number reads as an int"
    assert sg.from_json_value(sg.json_value(None)) is None
    assert sg.from_json_value(sg.json_value(2 ** 53)) == 2 ** 53
    for bad, error in ((2 ** 53 + 1, ValueError), (float("nan"), ValueError),
                       ({1: "x"}, TypeError), (b"bytes", TypeError)):
        with pytest.raises(error):
            sg.json_value({"field": bad})


def test_publish_requests_with_json():
    request = sg.publish_request("orders", json={"id": "o-1", "amount": 1200}, key="o-1")
    assert request.WhichOneof("payload") == "json" and request.key == b"o-1"
    assert sg.from_json_value(request.json) == {"id": "o-1", "amount": 1200}
    assert sg.publish_request("orders", json=[1, 2]).json.list_value.values[1].number_value == 2
    with pytest.raises(TypeError):
        sg.publish_request("orders", "raw", json={"id": "o-1"})
    with pytest.raises(TypeError):
        sg.publish_request("orders", page_event="P1", json={"id": "o-1"})


def test_decoded_reads_a_records_decoded_value():
    record = sg.event_pb2.Record(value=b'{"amount":5}')
    assert sg.decoded(record) is None and sg.decoded(record, default={}) == {}
    record.decoded.CopyFrom(sg.json_value({"amount": 5}))
    assert sg.decoded(record) == {"amount": 5}
