"""The Client: one gRPC channel to a streamgate server and a method per RPC.

Messages going out are built from plain Python values (str or bytes, dicts of headers,
datetimes, seconds, JSON-like dicts and lists); messages coming back are the generated
protobuf messages (Record, PublishResponse, PageStats, ...), whose fields are documented in
proto/streamgate/v1; decoded() turns a Record's decoded value into plain Python.
Every failure is raised as a StreamgateError subclass (see errors.py), streams included.
"""

import collections
import dataclasses
import datetime
import math
import os
import queue
import threading
import urllib.parse
import weakref

import grpc
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2
from streamgate.v1 import (
    admin_pb2, admin_pb2_grpc, event_pb2, gateway_pb2, gateway_pb2_grpc, stats_pb2, supplier_pb2,
)

from .errors import DeadlineExceeded, StreamgateError, error_for, from_rpc_error

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVICE = "streamgate.v1.EventGateway"
# Subscribe batches are about 1 MiB, PageStats up to about 3.5 MiB; a single record may be
# as large as the server's --max-message-bytes.
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
# The largest integer a google.protobuf.Value (a double) holds exactly.
MAX_EXACT_INT = 2 ** 53


# ---------------------------------------------------------------------------------------
# Building requests from plain values
# ---------------------------------------------------------------------------------------

def _bytes(value):
    """str (UTF-8) or bytes-like -> bytes; None stays None."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected str or bytes, got {type(value).__name__}")


def _headers(headers):
    """A dict or a list of (name, value) pairs -> [Header]; order and repeats are kept."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [event_pb2.Header(key=name, value=_bytes(value)) for name, value in pairs]


def _timestamp(when):
    """A datetime (naive means UTC) or a Timestamp -> Timestamp."""
    if when is None or isinstance(when, timestamp_pb2.Timestamp):
        return when
    if isinstance(when, datetime.datetime):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(when)
        return stamp
    raise TypeError(f"expected a datetime, got {type(when).__name__}")


def _duration(length):
    """Seconds (int or float) or a timedelta -> Duration."""
    if length is None or isinstance(length, duration_pb2.Duration):
        return length
    if isinstance(length, (int, float)) and not isinstance(length, bool):
        length = datetime.timedelta(seconds=length)
    if isinstance(length, datetime.timedelta):
        duration = duration_pb2.Duration()
        duration.FromTimedelta(length)
        return duration
    raise TypeError(f"expected seconds or a timedelta, got {type(length).__name__}")


def json_value(value, where="json"):
    """A JSON-like Python value -> google.protobuf.Value: dict (str keys), list or tuple,
    str, bool, int, float, None (JSON null). Numbers travel as doubles: an int beyond 2**53
    is refused (give it as a str, as the proto3 JSON mapping writes 64-bit integers)."""
    if isinstance(value, struct_pb2.Value):
        return value
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise ValueError(f"{where}: {value} is beyond 2**53, which a JSON number carries "
                             "exactly: give it as a string")
        return struct_pb2.Value(number_value=value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a JSON number")
        return struct_pb2.Value(number_value=value)
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    if isinstance(value, dict):
        fields = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: object keys must be str, got {type(key).__name__}")
            fields[key] = json_value(item, f"{where}.{key}")
        return struct_pb2.Value(struct_value=struct_pb2.Struct(fields=fields))
    if isinstance(value, (list, tuple)):
        items = [json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=items))
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value (dict, list, str, "
                    "int, float, bool or None)")


def from_json_value(value):
    """A google.protobuf.Value -> plain Python (dict, list, str, bool, None, and int for a
    whole number within 2**53, else float)."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return {key: from_json_value(item) for key, item in value.struct_value.fields.items()}
    if kind == "list_value":
        return [from_json_value(item) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) <= MAX_EXACT_INT else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or nothing set


def decoded(record, default=None):
    """A Record's value as its topic's schema decodes it, as plain Python (see
    from_json_value): a dict for a JSON object or a Protobuf message (its proto3 JSON
    mapping: 64-bit integers as str). ``default`` when the record carries no decoded value:
    the stream did not ask for them (``decode=True``), the topic has no schema and the value
    is not JSON, or the value did not decode (then ``record.decode_error`` says why). A
    Delivery of a Consume stream works too."""
    record = getattr(record, "record", record)  # a Delivery: its Record
    if not record.HasField("decoded"):
        return default
    return from_json_value(record.decoded)


def page_event(name, *, user=None, duration_ms=None, date=None):
    """A PageEvent. Fields left out get the server's defaults on Publish: user U1|U2 at
    random, date now, duration uniform in 0..9000 ms."""
    return event_pb2.PageEvent(name=name, user=user, duration_ms=duration_ms,
                               date=_timestamp(date))


def publish_request(topic, value=None, *, page_event=None, json=None, key=None,
                    headers=None, partition=None, timestamp=None):
    """A PublishRequest: a raw ``value`` (str or bytes), a ``page_event`` (a PageEvent, or
    just its page name) or ``json`` (a dict or other JSON-like value, see json_value(), which
    the server encodes to the topic's format: Protobuf binary on a Protobuf topic, compact
    JSON checked against a JSON Schema topic's schema, compact JSON elsewhere). Without a
    key, a PageEvent is keyed by its page name and a raw or JSON value has a null key."""
    if sum(payload is not None for payload in (value, page_event, json)) > 1:
        raise TypeError("give one of value, page_event or json")
    if isinstance(page_event, str):
        page_event = event_pb2.PageEvent(name=page_event)
    return gateway_pb2.PublishRequest(
        topic=topic, key=_bytes(key), headers=_headers(headers), value=_bytes(value),
        page_event=page_event, json=None if json is None else json_value(json),
        partition=partition, timestamp=_timestamp(timestamp))


def start_position(start):
    """Where a Subscribe or Consume stream starts, from a plain value:

    - ``"earliest"`` or ``"latest"``;
    - an int >= 0: that absolute offset in every partition (clamped);
    - an int < 0: that many records before the end of each partition (-5: the last five);
    - a datetime: the first record at or after it;
    - None: the server's default (latest; a group's committed offsets).
    """
    if start is None or isinstance(start, gateway_pb2.StartPosition):
        return start
    if start in ("earliest", "latest"):
        return gateway_pb2.StartPosition(**{start: True})
    if isinstance(start, int) and not isinstance(start, bool):
        if start < 0:
            return gateway_pb2.StartPosition(from_end=-start)
        return gateway_pb2.StartPosition(offset=start)
    if isinstance(start, datetime.datetime):
        return gateway_pb2.StartPosition(timestamp=_timestamp(start))
    raise ValueError(f"unknown start position {start!r}: use 'earliest', 'latest', an "
                     "offset (int >= 0), -N for N records before the end, or a datetime")


def _topics(topics):
    return [topics] if isinstance(topics, str) else list(topics)


def _parse_server(server):
    """``http://host:port``, ``https://host:port`` or ``host:port`` -> (target, tls)."""
    scheme, sep, rest = server.partition("://")
    if not sep:
        scheme, rest = "http", server
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"server {server!r}: the scheme must be http:// or https://")
    parts = urllib.parse.urlsplit("//" + rest)
    if parts.path not in ("", "/") or parts.query or not parts.hostname:
        raise ValueError(f"server {server!r}: expected http://HOST:PORT, https://HOST:PORT "
                         "or HOST:PORT")
    port = parts.port or (443 if scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", scheme == "https"


def _read_pem(value):
    """PEM bytes, or a path to read them from."""
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as file:
        return file.read()


# ---------------------------------------------------------------------------------------
# Results and streams
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class PublishOutcome:
    """The outcome of one record of publish_stream: ``ack`` (a PublishResponse: topic,
    partition, offset, timestamp) or ``error`` (a StreamgateError, not raised)."""
    sequence: int
    ack: gateway_pb2.PublishResponse = None
    error: StreamgateError = None

    @property
    def ok(self):
        """Whether the broker acknowledged the record."""
        return self.error is None


class Stream:
    """A server stream: iterate it for its messages; ``cancel()`` (or leaving a ``with``
    block) ends it early. gRPC failures are raised as StreamgateError subclasses."""

    def __init__(self, call):
        self._call = call
        self._cancelled = False
        self._messages = self._typed(call)

    def _typed(self, call):
        try:
            yield from call
        except grpc.RpcError as error:
            if self._cancelled and error.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(error) from None

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._messages)

    def cancel(self):
        """Ends the stream at once; iterating it then stops quietly."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


class Subscription(Stream):
    """A Subscribe stream. Iterating it yields Record messages one by one (the server sends
    them in batches). ``assignment`` is the latest Assignment: which partitions the stream
    reads and the offset it starts from in each (reading it waits for the first one)."""

    def __init__(self, call):
        super().__init__(call)
        self.assignments = []
        self._ready = collections.deque()

    def _receive(self):
        """The next message from the server; None once the stream has ended."""
        return next(self._messages, None)

    def _read(self):
        """Reads one message from the server; False once the stream has ended."""
        message = self._receive()
        if message is None:
            return False
        kind = message.WhichOneof("message")
        if kind == "assignment":
            self.assignments.append(message.assignment)
        elif kind == "records":
            self._ready.extend(self._wrap(r) for r in message.records.records)
        elif kind == "record":  # older servers send records one by one
            self._ready.append(self._wrap(message.record))
        return True

    def _wrap(self, item):
        return item

    @property
    def assignment(self):
        """The latest Assignment, waiting for the first; None if the stream ended first."""
        while not self.assignments and self._read():
            pass
        return self.assignments[-1] if self.assignments else None

    def __next__(self):
        while not self._ready:
            if not self._read():
                raise StopIteration
        return self._ready.popleft()


class Delivery:
    """One record delivered by a Consume stream: ``record`` (the Record message) with its
    fields at hand (topic, partition, offset, key, value, headers, page_event; ``decoded``,
    the decoded value as plain Python, and ``decode_error``, with ``decode=True``),
    ``ack_id``, ``delivery_attempt`` (1, then counting up with every redelivery), ``ack()``
    and ``nack(delay=None)``."""

    __slots__ = ("record", "ack_id", "delivery_attempt", "_consumer")

    def __init__(self, consumer, consumed):
        self._consumer = consumer
        self.record = consumed.record
        self.ack_id = consumed.ack_id
        self.delivery_attempt = consumed.delivery_attempt

    topic = property(lambda self: self.record.topic)
    partition = property(lambda self: self.record.partition)
    offset = property(lambda self: self.record.offset)
    headers = property(lambda self: self.record.headers)
    key = property(lambda self: self.record.key if self.record.HasField("key") else None)
    value = property(lambda self: self.record.value if self.record.HasField("value") else None)
    page_event = property(
        lambda self: self.record.page_event if self.record.HasField("page_event") else None)
    decoded = property(decoded)  # decoded() takes a Delivery too
    decode_error = property(lambda self: self.record.decode_error or None)

    def ack(self):
        """Processed: the group may commit it (once everything before it is acked too)."""
        self._consumer.ack(self)

    def nack(self, delay=None):
        """Not processed: deliver it again, after ``delay`` (seconds or timedelta)."""
        self._consumer.nack(self, delay=delay)

    def __repr__(self):
        return (f"Delivery({self.topic}/{self.partition}@{self.offset}, "
                f"attempt {self.delivery_attempt})")


_CLOSE = object()


def _outgoing(requests):
    """The request stream of a Consume call: what is queued, until _CLOSE (the half-close).
    A function of the queue alone, so that gRPC's thread reading it keeps no Consumer alive."""
    while (request := requests.get()) is not _CLOSE:
        yield request


def _ack_ids(items):
    """A Delivery, an ack id, or an iterable of them -> [ack id]."""
    if isinstance(items, (str, Delivery)):
        items = [items]
    return [item.ack_id if isinstance(item, Delivery) else item for item in items]


class _Inbox:
    """The messages of a stream call, read by a thread of its own.

    A gRPC call takes one reader at a time, and a read that Ctrl-C interrupts leaves its
    receive pending: reading the call again then, or from a second thread while the first
    waits, fails with ``ValueError: Internal gRPC call error 8``. Here only this thread reads
    the call; the stream's readers and close() wait on ``condition``, which Ctrl-C may
    interrupt and close() may end at any time. At most ``size`` messages are read ahead.
    """

    def __init__(self, call, size):
        self.condition = threading.Condition()
        self.messages = collections.deque()
        self.ended = False
        self.failure = None  # the exception that ended the call; None for a clean end
        self.discard = False  # set by close()/cancel(): drain the call, keep nothing
        self._call, self._size = call, size
        threading.Thread(target=self._run, name="streamgate-consume-reader",
                         daemon=True).start()

    def _run(self):
        failure = None
        try:
            for message in self._call:
                with self.condition:
                    while len(self.messages) >= self._size and not self.discard:
                        self.condition.wait()
                    if not self.discard:
                        self.messages.append(message)
                        self.condition.notify_all()
        except Exception as error:  # a grpc.RpcError, or the channel closed under the call
            failure = error
        with self.condition:
            self.ended, self.failure = True, failure
            self.condition.notify_all()

    def stop(self):
        """Drops what was read and what is still to come, and wakes every waiting reader."""
        with self.condition:
            self.discard = True
            self.messages.clear()
            self.condition.notify_all()


def _abandon(call, requests, inbox):
    """A Consumer collected without close(): its call is cancelled, as gRPC does with any
    call it collects (nothing unacknowledged is committed)."""
    requests.put(_CLOSE)
    inbox.stop()
    call.cancel()


class Consumer(Subscription):
    """A Consume stream: acknowledged consumption as a consumer group member.

    Iterate it for Delivery objects and ack or nack each (on the delivery, or with
    ``consumer.ack(deliveries_or_ids)``). ``close()`` — also run when a ``with`` block ends —
    half-closes the request stream: the server commits the acknowledged prefix of every
    partition, leaves the group and ends the stream, and close() returns once it has.
    Whatever was not acknowledged then (or after a cancel, a lost connection, a crash) is
    delivered again to the group, and so is every record above a partition's first
    unacknowledged one: Kafka commits a contiguous prefix.

    close() and cancel() may be called from any thread, also while others iterate the
    stream (those iterations then end), and after Ctrl-C interrupted an iteration.
    """

    # Messages (batches of deliveries) read from the server ahead of the iteration.
    READ_AHEAD = 16

    def __init__(self, stub, start, metadata, timeout):
        self._requests = queue.Queue()
        self._requests.put(gateway_pb2.ConsumeRequest(start=start))
        self._closed = False
        self._failure_raised = False
        call = stub.Consume(_outgoing(self._requests), metadata=metadata, timeout=timeout)
        super().__init__(call)
        self._inbox = _Inbox(call, self.READ_AHEAD)
        weakref.finalize(self, _abandon, call, self._requests, self._inbox)

    def _receive(self):
        inbox = self._inbox
        with inbox.condition:
            inbox.condition.wait_for(lambda: inbox.messages or inbox.ended or self._closed)
            if self._closed:
                return None
            if inbox.messages:
                message = inbox.messages.popleft()
                inbox.condition.notify_all()
                return message
            failure = self._failure()
        if failure is not None:
            raise failure
        return None

    def _failure(self):
        """The error that ended the stream, as a StreamgateError, if not raised yet: it is
        raised once, by the read or the close() that finds it. None after a clean end or a
        cancel of ours. Called with the inbox's condition held."""
        failure = self._inbox.failure
        if failure is None or self._failure_raised:
            return None
        self._failure_raised = True
        if isinstance(failure, grpc.RpcError):
            if self._cancelled and failure.code() == grpc.StatusCode.CANCELLED:
                return None
            return from_rpc_error(failure)
        return failure

    def __next__(self):
        if self._closed:
            raise StopIteration
        return super().__next__()

    def _wrap(self, consumed):
        return Delivery(self, consumed)

    def _send(self, request):
        if self._closed:
            raise RuntimeError("the Consume stream is closed")
        self._requests.put(request)

    def ack(self, items):
        """Acknowledges deliveries (Delivery objects or ack ids)."""
        ids = _ack_ids(items)
        if ids:
            self._send(gateway_pb2.ConsumeRequest(ack=gateway_pb2.AckRequest(ack_ids=ids)))

    def nack(self, items, delay=None):
        """Asks for deliveries to come again, after ``delay`` (seconds or timedelta; at most
        1 h; None: at once)."""
        ids = _ack_ids(items)
        if ids:
            self._send(gateway_pb2.ConsumeRequest(
                nack=gateway_pb2.NackRequest(ack_ids=ids, delay=_duration(delay))))

    def _shut(self):
        """No more requests (the half-close) and no more deliveries: iterations end."""
        with self._inbox.condition:
            if not self._closed:
                self._closed = True
                self._requests.put(_CLOSE)
        self._inbox.stop()
        self._ready.clear()

    def close(self, timeout=None):
        """Half-closes the stream and waits until the server ends it, after committing what
        was acknowledged. Deliveries not yet read are dropped, unacknowledged, and
        iterations of the stream (in other threads too) end. Raises the stream's error, if
        it failed and no iteration raised it yet, or DeadlineExceeded if the server did not
        end it within ``timeout`` seconds (the stream is then cancelled). Interrupted (by
        Ctrl-C), it cancels the stream. Calling it again does nothing more."""
        self._shut()
        inbox = self._inbox
        try:
            with inbox.condition:
                ended = inbox.condition.wait_for(lambda: inbox.ended, timeout)
        except BaseException:  # Ctrl-C while waiting for the server: wait no longer
            self.cancel()
            raise
        if not ended:
            self.cancel()
            raise DeadlineExceeded(f"the server did not end the Consume stream within "
                                   f"{timeout} s of its half-close")
        with inbox.condition:
            failure = self._failure()
        if failure is not None:
            raise failure

    def cancel(self):
        """Ends the stream at once, without the final commit (acks already sent may still be
        committed by the server's periodic commit; nothing unacknowledged ever is)."""
        self._shut()
        super().cancel()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except StreamgateError:
            pass  # the error that ended the block matters more


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------

class Client:
    """A connection to a streamgate server.

    ``server``: ``http://HOST:PORT`` (plain text), ``https://HOST:PORT`` (TLS) or
    ``HOST:PORT``; default: env STREAMGATE_SERVER, else http://127.0.0.1:8080.
    ``token``: sent as ``authorization: Bearer <token>``; default: env STREAMGATE_TOKEN.
    ``root_certificates``: PEM CA bundle (bytes or a path) to trust for https:// instead of
    the system's; ``certificate_chain``/``private_key``: a client certificate for mutual TLS.
    ``timeout``: deadline in seconds of the unary calls (streams have none unless given).
    """

    def __init__(self, server=None, token=None, root_certificates=None, *,
                 certificate_chain=None, private_key=None, timeout=30.0):
        self.server = server or os.environ.get("STREAMGATE_SERVER") or DEFAULT_SERVER
        token = token if token is not None else os.environ.get("STREAMGATE_TOKEN")
        target, tls = _parse_server(self.server)
        options = [("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
        if tls:
            credentials = grpc.ssl_channel_credentials(
                _read_pem(root_certificates), _read_pem(private_key),
                _read_pem(certificate_chain))
            self._channel = grpc.secure_channel(target, credentials, options)
        elif root_certificates or certificate_chain or private_key:
            raise ValueError(f"TLS settings need an https:// server, got {self.server!r}")
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._stub = gateway_pb2_grpc.EventGatewayStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def close(self):
        """Closes the channel (and every stream on it)."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _unary(self, method, request, timeout):
        try:
            return method(request, metadata=self._metadata,
                          timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    # -- publishing ----------------------------------------------------------------------

    def publish(self, topic, value=None, *, page_event=None, json=None, key=None,
                headers=None, partition=None, timestamp=None, timeout=None):
        """Publishes one record and returns where Kafka stored it (a PublishResponse:
        topic, partition, offset, timestamp), once the broker acknowledged it.

        ``value``: raw str or bytes; or ``page_event``: a PageEvent (see page_event()) or a
        page name; or ``json``: a dict (or list, str, number, bool) the server encodes to the
        topic's format, e.g. ``json={"id": "o-1", "amount": 1200}``; a value its schema does
        not accept raises InvalidArgument naming the field. ``key`` str/bytes; ``headers``
        dict or (name, value) pairs; ``partition`` int; ``timestamp`` datetime."""
        request = publish_request(topic, value, page_event=page_event, json=json, key=key,
                                  headers=headers, partition=partition, timestamp=timestamp)
        return self._unary(self._stub.Publish, request, timeout)

    def publish_stream(self, records, *, timeout=None):
        """Publishes many records over one stream; yields one PublishOutcome per record, in
        order. A rejected record is an outcome with ``error`` set (the stream goes on).

        ``records``: PublishRequest messages (see publish_request()) or dicts of
        publish_request's arguments, e.g. ``{"topic": "R1", "value": "v", "key": "k"}``."""
        requests = (r if isinstance(r, gateway_pb2.PublishRequest) else publish_request(**r)
                    for r in records)
        stream = Stream(self._stub.PublishStream(requests, metadata=self._metadata,
                                                 timeout=timeout))
        with stream:  # a caller that stops reading early cancels the call
            for result in stream:
                if result.WhichOneof("outcome") == "ack":
                    yield PublishOutcome(result.sequence, ack=result.ack)
                else:
                    yield PublishOutcome(result.sequence, error=error_for(
                        result.error.code, result.error.message))

    # -- reading -------------------------------------------------------------------------

    def subscribe(self, topics, *, start=None, group=None, max_records=None,
                  stop_at_end=False, fields=None, filter=None, decode=False, timeout=None):
        """Reads records from one or more topics as they arrive: a Subscription, iterated
        for Record messages, with ``.assignment``.

        ``start``: see start_position() (default latest; with a group, its committed
        offsets). ``group``: share partitions with the group and commit as records are
        delivered. ``max_records``/``stop_at_end``: end the stream (cleanly) after that
        many records / at the end offsets it started with. ``fields``: the Record fields
        to receive (e.g. ``["key", "value"]``; default all); leaving out ``headers`` and
        ``page_event`` also spares the server their parsing. ``filter``: a CEL expression
        over topic, partition, offset, timestamp, key, headers and value (decoded by the
        topic's schema, or parsed when it is JSON), e.g. ``"value.amount > 1000 &&
        headers.region == 'eu'"``: only the records it matches are sent, and counted by
        ``max_records``; a bad one raises InvalidArgument (``filter: ...``, with its
        position). ``decode``: each value also comes decoded, in ``record.decoded`` (read it
        with decoded()), or ``record.decode_error`` says why not; ``fields`` may then name
        paths inside it, e.g. ``["offset", "decoded.amount"]``."""
        read_mask = field_mask_pb2.FieldMask(paths=list(fields)) if fields else None
        request = gateway_pb2.SubscribeRequest(
            topics=_topics(topics), group=group, start=start_position(start),
            stop_at_end=stop_at_end, max_records=max_records, read_mask=read_mask,
            filter=filter or "", decode=decode)
        return Subscription(self._stub.Subscribe(request, metadata=self._metadata,
                                                 timeout=timeout))

    def consume(self, topics, group, *, start=None, max_outstanding_records=0,
                ack_deadline=None, max_delivery_attempts=0, filter=None, decode=False,
                timeout=None):
        """Acknowledged consumption in consumer group ``group``: a Consumer (see there).

        ``start``: for partitions the group never committed (see start_position()).
        ``max_outstanding_records``: most deliveries not yet acked (0: server default,
        1000). ``ack_deadline``: seconds or timedelta before an unacked delivery comes again
        (default 30 s, 1 s to 1 h). ``max_delivery_attempts``: deliveries before a record
        goes to the dead-letter topic ``dlq.<len(topic)>.<topic>.<group>`` (0: unlimited).
        ``filter``: a CEL expression, as subscribe()'s; the records it does not match are
        not delivered and count as acked. ``decode``: values also come decoded
        (``delivery.decoded``, ``delivery.decode_error``), as subscribe()'s."""
        start_request = gateway_pb2.ConsumeStart(
            group=group, topics=_topics(topics), start=start_position(start),
            max_outstanding_records=max_outstanding_records,
            ack_deadline=_duration(ack_deadline), max_delivery_attempts=max_delivery_attempts,
            filter=filter or "", decode=decode)
        return Consumer(self._stub, start_request, self._metadata, timeout)

    # -- the seed application --------------------------------------------------------------

    def watch_page_stats(self, *, rolling=None, final_only=False, timeout=None):
        """Per-page visit counts: a Stream of PageStats messages, one at once, then one per
        tick. ``rolling``: seconds or timedelta of the rolling count (default: the window);
        ``final_only``: only each closed window, once."""
        request = stats_pb2.WatchPageStatsRequest(rolling=_duration(rolling),
                                                  final_only=final_only)
        return Stream(self._stub.WatchPageStats(request, metadata=self._metadata,
                                                timeout=timeout))

    def control_supplier(self, action=None, *, rate_per_second=None, interval=None,
                         pages=None, users=None, min_duration_ms=None, max_duration_ms=None,
                         topic=None, timeout=None):
        """Starts (``action="start"``), stops (``"stop"``) or re-configures the PageEvent
        supplier, and returns its SupplierStatus. With no arguments: just the status.
        Settings left out keep their value; an invalid one raises InvalidArgument and
        changes nothing. ``interval``: seconds or timedelta, exclusive with the rate."""
        actions = {None: supplier_pb2.SUPPLIER_ACTION_UNSPECIFIED,
                   "start": supplier_pb2.SUPPLIER_ACTION_START,
                   "stop": supplier_pb2.SUPPLIER_ACTION_STOP}
        if action not in actions:
            raise ValueError(f"action must be 'start', 'stop' or None, got {action!r}")
        names = lambda values: None if values is None else supplier_pb2.StringList(  # noqa: E731
            values=_topics(values))
        settings = supplier_pb2.SupplierSettingsUpdate(
            interval=_duration(interval), rate_per_second=rate_per_second,
            pages=names(pages), users=names(users), min_duration_ms=min_duration_ms,
            max_duration_ms=max_duration_ms, topic=topic)
        request = supplier_pb2.ControlSupplierRequest(action=actions[action], settings=settings)
        return self._unary(self._stub.ControlSupplier, request, timeout)

    def list_topics(self, *, include_internal=False, timeout=None):
        """The cluster's topics (TopicInfo: name, partitions with leader and watermarks)."""
        request = gateway_pb2.ListTopicsRequest(include_internal=include_internal)
        return list(self._unary(self._stub.ListTopics, request, timeout).topics)

    # -- administration (AdminService) --------------------------------------------------------

    def create_topic(self, topic, *, partitions=0, replication_factor=0, configs=None,
                     timeout=None):
        """Creates a topic (0 partitions: the server's default) and returns its
        TopicDescription. AlreadyExists if it exists."""
        request = admin_pb2.CreateTopicRequest(
            topic=topic, partitions=partitions, replication_factor=replication_factor,
            configs=configs or {})
        return self._unary(self._admin.CreateTopic, request, timeout).topic

    def describe_topic(self, topic, *, timeout=None):
        """A topic's partitions (leader, replicas, ISR, watermarks) and configs."""
        request = admin_pb2.DescribeTopicRequest(topic=topic)
        return self._unary(self._admin.DescribeTopic, request, timeout).topic

    def list_groups(self, *, timeout=None):
        """The consumer groups this principal may see (GroupSummary: group, state)."""
        return list(self._unary(self._admin.ListGroups, admin_pb2.ListGroupsRequest(),
                                timeout).groups)

    def describe_group(self, group, *, timeout=None):
        """A group's GroupDescription: state, members, and per partition the committed
        offset, log-end offset and lag; ``total_lag``."""
        request = admin_pb2.DescribeGroupRequest(group=group)
        return self._unary(self._admin.DescribeGroup, request, timeout).group

    def reset_group_offsets(self, group, topics, *, to_earliest=False, to_latest=False,
                            to_offset=None, to_datetime=None, shift_by=None, execute=False,
                            timeout=None):
        """Moves a group's offsets on ``topics``; exactly one target. A dry run unless
        ``execute``: returns the OffsetMove plan either way. FailedPrecondition while the
        group has active members."""
        request = admin_pb2.ResetGroupOffsetsRequest(
            group=group, topics=_topics(topics), execute=execute)
        if to_earliest:
            request.to_earliest = True
        elif to_latest:
            request.to_latest = True
        elif to_offset is not None:
            request.to_offset = to_offset
        elif to_datetime is not None:
            request.to_datetime.CopyFrom(_timestamp(to_datetime))
        elif shift_by is not None:
            request.shift_by = shift_by
        else:
            raise ValueError("say where to: to_earliest, to_latest, to_offset, to_datetime "
                             "or shift_by")
        return list(self._unary(self._admin.ResetGroupOffsets, request, timeout).moves)

    def health(self, service=SERVICE, *, timeout=5.0):
        """The grpc.health.v1 status of ``service`` ("SERVING", "NOT_SERVING", ...); the
        server reports NOT_SERVING until it reaches Kafka."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        request = health_pb2.HealthCheckRequest(service=service)
        response = self._unary(stub.Check, request, timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
