"""Typed errors: every gRPC status the server answers with becomes a StreamgateError, or the
subclass named after its code, so callers can write ``except NotFound:``.
"""

import grpc


class StreamgateError(Exception):
    """A call failed. ``code`` is the grpc.StatusCode, ``message`` the server's explanation
    (what went wrong and what to fix)."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self):
        return f"{self.code.name}: {self.message}"


class InvalidArgument(StreamgateError):
    """A bad request: topic name, payload, offset, supplier setting... (INVALID_ARGUMENT)."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(StreamgateError):
    """The topic does not exist (NOT_FOUND)."""
    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(StreamgateError):
    """A size or capacity limit; the message names it and its flag (RESOURCE_EXHAUSTED)."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PermissionDenied(StreamgateError):
    """The caller's principal lacks a permission, named in the message (PERMISSION_DENIED)."""
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(StreamgateError):
    """No token, or a malformed, unknown or expired one (UNAUTHENTICATED)."""
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(StreamgateError):
    """Server or Kafka unreachable, or the server is shutting down (UNAVAILABLE)."""
    code = grpc.StatusCode.UNAVAILABLE


class FailedPrecondition(StreamgateError):
    """E.g. resetting the offsets of a group that has active members (FAILED_PRECONDITION)."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(StreamgateError):
    """E.g. creating a topic that exists (ALREADY_EXISTS)."""
    code = grpc.StatusCode.ALREADY_EXISTS


class Unimplemented(StreamgateError):
    """The broker lacks the Kafka API a call needs; the message names it (UNIMPLEMENTED)."""
    code = grpc.StatusCode.UNIMPLEMENTED


class DeadlineExceeded(StreamgateError):
    """The call's deadline passed (DEADLINE_EXCEEDED)."""
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(StreamgateError):
    """A server-side bug; the server's log says more (INTERNAL)."""
    code = grpc.StatusCode.INTERNAL


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgument, NotFound, ResourceExhausted, PermissionDenied, Unauthenticated,
    Unavailable, FailedPrecondition, AlreadyExists, Unimplemented, DeadlineExceeded, Internal)}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def error_for(code, message: str) -> StreamgateError:
    """The typed error for a status code: a grpc.StatusCode or its number (as in RecordError)."""
    if not isinstance(code, grpc.StatusCode):
        code = _BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    cls = _BY_CODE.get(code, StreamgateError)
    return cls(message, code)


def from_rpc_error(error: grpc.RpcError) -> StreamgateError:
    """The typed error for a failed gRPC call."""
    return error_for(error.code(), error.details() or "")
