"""The glue between an ASGI request and the AWS machinery: SigV4 over the bytes as received,
then the RPC dispatcher for the service the request was signed for.

The app (written elsewhere) mounts `serve_rpc` on `POST /` and `POST /service/{...}`, and calls
`authenticate` itself on the data-plane routes before the router runs.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from tideserve.api.rpc import OperationRegistry, auth_error_response, handle_rpc
from tideserve.api.sigv4 import Identity, check_headers, verify, verify_payload
from tideserve.errors import AuthError

SecretLookup = Callable[[str], str | None]


def authenticate(
    request: Request,
    body: bytes,
    secret_for: SecretLookup,
    now: float,
    expected_service: str | None = None,
) -> Identity:
    """Verify the request's SigV4 signature (raises AuthError). `body` is exactly as received."""
    scope = request.scope
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return verify(
        scope["method"],
        raw_path.decode("latin-1"),
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        body,
        secret_for,
        now,
        expected_service=expected_service,
    )


async def serve_rpc(
    request: Request,
    registry: OperationRegistry,
    secret_for: SecretLookup,
    now: float,
) -> Response:
    """Authenticate (the headers before any body byte is read, then the body), then dispatch
    to the service named in the credential scope."""
    scope = request.scope
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    raw_path = scope.get("raw_path") or scope["path"].encode()
    try:
        signed = check_headers(scope["method"], raw_path.decode("latin-1"),
                               scope.get("query_string", b"").decode("latin-1"), headers,
                               secret_for, now)
        body = await request.body()
        identity = verify_payload(signed, body)
    except AuthError as exc:
        return auth_error_response(request, exc)
    return await handle_rpc(request, body, identity.service, registry)
