"""What the ASGI app needs of the parts it fronts, as protocols, so that api imports no
endpoint kind: the wiring (server.py) hands it the real objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import Receive, Scope, Send


class MountedApp(Protocol):
    """An ASGI app that takes the requests it recognises before the AWS protocols see them
    (objectstore.s3_api.S3App is one: requests signed for s3 or addressed to a bucket)."""

    def handles(self, scope: Scope) -> bool: ...
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class AcceptedAsync(Protocol):
    def body(self) -> bytes: ...
    def headers(self) -> list[tuple[bytes, bytes]]: ...


class AsyncFrontPort(Protocol):
    """InvokeEndpointAsync's front door (asyncinf.front.AsyncFront is one)."""

    @property
    def max_inline_bytes(self) -> int: ...
    def accept(self, name: str, headers: dict[str, str], body: bytes) -> AcceptedAsync: ...
    def refuse_sync(self, name: str) -> None: ...


class AccessPort(Protocol):
    """Authorisation after SigV4 (access.gate.Gate is one). `service` is the SigV4 signing
    name, "sagemaker-runtime" for the data plane, or "s3"."""

    def authorize(self, key_id: str, service: str, operation: str,
                  params: Mapping[str, Any], source_ip: str = "") -> None: ...
    def identify(self, key_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class ApiCall:
    """One authenticated AWS call as the audit trail records it, after it was answered and
    before the answer is sent. `params`/`result` are the handler's plain Python values."""

    service: str  # SigV4 signing name ("sagemaker-runtime" for the data plane, "s3")
    operation: str
    user_identity: Mapping[str, Any] | None  # CloudTrail userIdentity, from AccessPort.identify
    params: Mapping[str, Any]
    result: Mapping[str, Any] | None
    error_code: str | None
    error_message: str | None
    request_id: str
    source_ip: str
    user_agent: str
    region: str


class AuditPort(Protocol):
    """The audit trail (audit.trail.Trail is one): `record` returns once the event is stored."""

    def records(self, service: str, operation: str) -> bool: ...
    def record(self, call: ApiCall) -> None: ...
