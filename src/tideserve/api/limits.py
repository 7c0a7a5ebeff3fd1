"""Request bodies, refused before they are read: an unauthenticated or oversized body costs
the server its header and nothing more.

The app checks SigV4 over the request line and headers first (sigv4.check_headers), then
the declared Content-Length against the operation's limit, and only then reads the body,
hashing it as it streams (sigv4.PayloadHash) for verify_payload. A refusal sent while the
body is still unread carries `Connection: close`: the client may be mid-way through sending
it, and whatever follows on that connection is not a request (uvicorn then closes it).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from tideserve.errors import LimitExceededError

MAX_CONTROL_BODY_BYTES = 16 * 1024 * 1024  # any control-plane operation (AWS: per service)


def declared_length(headers: Mapping[str, str]) -> int:
    """The Content-Length a request declares (lower-cased names); 0 when absent. A value
    that is not a number was already refused by the HTTP parser."""
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else 0


def has_body(headers: Mapping[str, str]) -> bool:
    return declared_length(headers) > 0 or "transfer-encoding" in headers


def refuse_oversized_control(headers: Mapping[str, str]) -> None:
    """A control-plane body declared over the limit, refused before a byte of it is read."""
    declared = declared_length(headers)
    if declared > MAX_CONTROL_BODY_BYTES:
        raise LimitExceededError(
            f"Request body of {declared} bytes exceeds the maximum of "
            f"{MAX_CONTROL_BODY_BYTES} bytes.",
            code="RequestEntityTooLarge",
        )


def closing(response: Response) -> Response:
    """`response`, ending the connection: sent while the request body is still unread."""
    response.headers["connection"] = "close"
    return response
