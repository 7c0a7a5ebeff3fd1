"""The glue between an ASGI request and the AWS machinery: SigV4 over the bytes as received,
then the RPC dispatcher for the service the request was signed for.

The app (written elsewhere) mounts `serve_rpc` on `POST /` and `POST /service/{...}`, and calls
`authenticate` itself on the data-plane routes before the router runs.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from tideserve.api.rpc import OperationRegistry, handle_rpc, rpc_error_response
from tideserve.api.shapes import RPC_MODELS
from tideserve.api.sigv4 import Identity, scope_service, verify
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
    """Authenticate, then dispatch to the service named in the credential scope."""
    body = await request.body()
    claimed = scope_service(request.headers)
    # Until the signature is checked the claimed service only chooses the error dialect.
    dialect = claimed if claimed in RPC_MODELS else "sagemaker"
    try:
        identity = authenticate(request, body, secret_for, now)
    except AuthError as exc:
        return rpc_error_response(request, dialect, exc)
    if identity.service not in RPC_MODELS:
        error = AuthError(
            f"Credential should be scoped to a service tideserve serves "
            f"({', '.join(sorted(RPC_MODELS))}), not '{identity.service}'.",
            code="InvalidSignatureException",
        )
        return rpc_error_response(request, dialect, error)
    return await handle_rpc(request, body, identity.service, registry)
