"""What the ASGI app needs of the parts it fronts, as protocols, so that api imports no
endpoint kind: the wiring (server.py) hands it the real objects."""

from __future__ import annotations

from typing import Protocol

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
