"""The router is the only way into an instance: a secret per instance, shared by the two.

An instance listens on a loopback port that every local user can reach, and the container
contract has no authentication of its own. So the fleet makes a random token for each
instance it starts and hands it over in the environment (`TIDESERVE_INSTANCE_TOKEN`; never
argv, which `ps` shows to everyone; /proc/<pid>/environ is readable by the same uid only).
Everything that forwards to the instance — the router, serverless workers, the async
dispatcher — sends it as `X-Tideserve-Instance-Token`, and our instance server answers 403
to any request without it, except GET /ping (liveness, which reveals nothing and which a
readiness probe must reach without secrets).

A user's own server (TIDESERVE_SERVE_COMMAND) gets the same variable, but nothing makes it
check the header: such an instance is open to local users unless its code compares the
header with the variable, or it runs where others cannot reach its port (README).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import MutableMapping

TOKEN_ENV = "TIDESERVE_INSTANCE_TOKEN"
TOKEN_HEADER = "X-Tideserve-Instance-Token"
TOKEN_HEADER_RAW = TOKEN_HEADER.lower().encode()


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def token_header(token: str | None) -> dict[str, str]:
    """The header to send an instance started with `token` (none for one without)."""
    return {TOKEN_HEADER: token} if token else {}


def take_token(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """The instance's token, removed from the environment so the model's own subprocesses
    do not inherit it."""
    return environ.pop(TOKEN_ENV, None) or None


def presented_matches(expected: bytes, presented: bytes | None) -> bool:
    """Constant time, so a caller learns nothing of the token from timing."""
    return presented is not None and hmac.compare_digest(expected, presented)
