"""A small Python client for streamgate, the gRPC gateway to Kafka.

    from streamgate_client import Client, decoded

    with Client("http://127.0.0.1:8080") as client:
        client.publish("R1", "hello", key="greeting")
        for record in client.subscribe("R1", start="earliest", stop_at_end=True):
            print(record.offset, record.value)
        client.publish("orders", json={"id": "o-1", "amount": 1200})
        for record in client.subscribe("orders", filter="value.amount > 1000", decode=True):
            print(decoded(record)["id"])

The protobuf/gRPC stubs are generated from the repository's proto/ directory on first import
(or by ``python -m streamgate_client.generate``) into ``streamgate_client/_gen``.
"""

import sys

from . import _stubs

_gen_dir = str(_stubs.generate())
if _gen_dir not in sys.path:
    sys.path.insert(0, _gen_dir)

from streamgate.v1 import admin_pb2, event_pb2, gateway_pb2, stats_pb2, supplier_pb2  # noqa: E402

from .client import (  # noqa: E402
    Client, Consumer, Delivery, PublishOutcome, Stream, Subscription, decoded,
    from_json_value, json_value, page_event, publish_request, start_position,
)
from .errors import (  # noqa: E402
    AlreadyExists, DeadlineExceeded, FailedPrecondition, Internal, InvalidArgument, NotFound,
    PermissionDenied, ResourceExhausted, StreamgateError, Unauthenticated, Unavailable,
    Unimplemented, error_for,
)

__all__ = [
    "Client", "Consumer", "Delivery", "PublishOutcome", "Stream", "Subscription",
    "page_event", "publish_request", "start_position", "decoded", "json_value",
    "from_json_value",
    "StreamgateError", "InvalidArgument", "NotFound", "ResourceExhausted", "PermissionDenied",
    "Unauthenticated", "Unavailable", "FailedPrecondition", "DeadlineExceeded", "Internal",
    "AlreadyExists", "Unimplemented",
    "error_for", "admin_pb2", "event_pb2", "gateway_pb2", "stats_pb2", "supplier_pb2",
]
