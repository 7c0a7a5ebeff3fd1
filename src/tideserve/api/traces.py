"""Tracing's two routes on the server's port (tracing/__init__.py):

    GET  /tideserve/traces?endpoint=NAME&slowest=true&limit=N&trace_id=HEX
         the kept traces as JSON (tracing/view.py), newest first or slowest first; signed
         with SigV4 for `sagemaker` like every other call (a tideserve addition, mounted as
         the transform jobs' progress route is: no AWS API serves these traces; X-Ray's
         would be GetTraceSummaries).
    POST /v1/traces
         OTLP/HTTP from the server's own instances (tracing/receiver.py; their token, not
         SigV4: an OpenTelemetry exporter cannot sign).

A `tideserve traces` CLI call is the first (tracing/cli.py). Auth failures are answered as
the JSON protocols answer them: 403 with {"__type": code, "message": ...}.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from tideserve.api import sigv4
from tideserve.api.ports import AccessPort
from tideserve.clock import Clock
from tideserve.errors import AccessDeniedError, AuthError, TideserveError, ValidationError
from tideserve.settings import Settings
from tideserve.tracing.receiver import OtlpReceiver
from tideserve.tracing.setup import (
    ServerTracing,
    TracingConfig,
    build_server_tracing,
    share_with_instances,
)
from tideserve.tracing.view import trace_json

PATH = "/tideserve/traces"
SIGNING_NAME = "sagemaker"  # as tideserve's other routes of its own
MAX_LIMIT = 1000
DEFAULT_LIMIT = 20


class TracesFront:
    def __init__(self, tracing: ServerTracing, secret_for: Callable[[str], str | None],
                 clock: Clock, regions: Collection[str]) -> None:
        self.tracing = tracing
        self.secret_for = secret_for
        self.clock = clock
        self.regions = regions
        self.receiver = OtlpReceiver(tracing.token, tracing.ingest)
        # Reading traces is X-Ray's xray:BatchGetTraces (trust.py sets the gate).
        self.access: AccessPort | None = None

    @classmethod
    def build(cls, settings: Settings, secret_for: Callable[[str], str | None],
              clock: Clock) -> TracesFront | None:
        """The server's tracing, shared with the instances it starts; None when it is off
        (OTEL_SDK_DISABLED)."""
        config = TracingConfig(settings.otlp_endpoint, settings.trace_sample_ratio)
        tracing = build_server_tracing(config)
        if tracing is None:
            return None
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
        share_with_instances(tracing, f"http://{host}:{settings.port}")
        return cls(tracing, secret_for, clock, settings.signing_regions)

    def handles(self, scope: Scope) -> bool:
        return bool(scope["path"] == PATH or self.receiver.handles(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != PATH:
            await self.receiver(scope, receive, send)
            return
        try:
            if scope["method"] != "GET":
                raise ValidationError(f"Use GET {PATH}.")
            identity = self._verify(scope)
            if self.access is not None:
                client = scope.get("client") or ("", 0)
                self.access.authorize(identity.access_key_id, "xray", "BatchGetTraces", {},
                                      client[0])
            answer = self.answer(parse_qs(scope.get("query_string", b"").decode()))
        except TideserveError as exc:
            status = 403 if isinstance(exc, AuthError | AccessDeniedError) else 400
            code = exc.code or ("AccessDeniedException" if status == 403 else "ValidationError")
            await _send_json(send, status, {"__type": code, "message": exc.message})
            return
        await _send_json(send, 200, answer)

    def _verify(self, scope: Scope) -> sigv4.Identity:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        return sigv4.verify(scope["method"], raw_path.decode("latin-1"),
                     scope.get("query_string", b"").decode(), headers, b"", self.secret_for,
                     self.clock.now(), expected_service=SIGNING_NAME, regions=self.regions)

    def answer(self, query: dict[str, list[str]]) -> dict[str, Any]:
        recent = self.tracing.recent
        trace_id = _one(query, "trace_id")
        if trace_id is not None:
            try:
                kept = recent.get(int(trace_id, 16))
            except ValueError:
                raise ValidationError(f"trace_id {trace_id!r} is not 32 hex digits.") from None
            return {"Traces": [trace_json(kept)] if kept is not None else []}
        limit_text = _one(query, "limit") or str(DEFAULT_LIMIT)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise ValidationError(f"limit {limit_text!r} must be 1 to {MAX_LIMIT}.")
        slowest = (_one(query, "slowest") or "").lower() in ("1", "true", "yes")
        traces = recent.query(_one(query, "endpoint"), slowest, int(limit_text))
        return {"Traces": [trace_json(t) for t in traces]}


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
