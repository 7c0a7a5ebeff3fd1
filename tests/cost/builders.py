"""Builders for the cost tests, which read like the story they tell: Fleet.run('shop', 'a',
'ml.m5.large', at('2024-03-10 23:30:00'), at('2024-03-11 01:00:00')) is an instance that ran
across midnight; serve_registry runs a real tideserve.api RPC server for boto3."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import serve_asgi
from tideserve.api.gateway import serve_rpc
from tideserve.api.rpc import OperationRegistry
from tideserve.control.names import Arns
from tideserve.cost.ledger import Ledger

ARNS = Arns("us-east-1", "123456789012")
ACCESS_KEY, SECRET_KEY = "AKIDCOSTTEST", "cost-test-secret"
DAY = 86400.0
HOUR = 3600.0


def at(text: str) -> float:
    """'2024-03-10 23:59:30' (UTC) -> epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Fleet:
    """Starts and stops metered instances by name: run('shop', 'a', 'ml.m5.large', t0, t1)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.count = 0

    def start(self, endpoint: str, variant: str, instance_type: str, t: float,
              purchase_option: str = "OnDemand") -> str:
        self.count += 1
        instance_id = f"{endpoint}-{self.count:04d}"
        self.ledger.instance_started(instance_id, ARNS.endpoint(endpoint), endpoint, variant,
                                     instance_type, purchase_option, at=t)
        return instance_id

    def run(self, endpoint: str, variant: str, instance_type: str, t0: float,
            t1: float | None, purchase_option: str = "OnDemand") -> str:
        instance_id = self.start(endpoint, variant, instance_type, t0, purchase_option)
        if t1 is not None:
            self.ledger.instance_stopped(instance_id, at=t1)
        return instance_id


@contextlib.contextmanager
def serve_registry(registry: OperationRegistry) -> Iterator[str]:
    """A real tideserve.api RPC server (SigV4 included) on a free loopback port; yields its
    URL. Credentials: ACCESS_KEY / SECRET_KEY."""

    async def rpc(request: Request) -> Response:
        return await serve_rpc(request, registry, {ACCESS_KEY: SECRET_KEY}.get, time.time())

    app = Starlette(routes=[Route("/", rpc, methods=["POST"])])
    with serve_asgi(app) as url:
        yield url
