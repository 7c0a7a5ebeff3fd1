"""The async queue on a real SQLite database in a temp dir, with a clock that moves only
when a test says so."""

from __future__ import annotations

import pytest

from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.asyncinf.queue import AsyncQueue, QueuedRequest
from tideserve.clock import FakeClock
from tideserve.db import make_engine
from tideserve.schema import create_all

OUTPUT = {"OutputConfig": {"S3OutputPath": "s3://results/out"}}


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def queue(engine):
    return AsyncQueue(engine)


@pytest.fixture
def endpoints(engine, queue):
    return AsyncEndpoints(engine, queue)


def request(rid: str, at: float, endpoint: str = "ep", ttl: int = 21600, timeout: int = 900,
            body: bytes | None = b"1,2,3") -> QueuedRequest:
    return QueuedRequest(
        id=rid, endpoint_lower=endpoint, inference_id=rid, input_location=None, body=body,
        content_type="text/csv", accept=None, custom_attributes=None,
        output_location=f"s3://results/out/{rid}.out",
        failure_location=f"s3://results/out/{rid}-error.out",
        enqueued_at=at, ttl_seconds=ttl, timeout_seconds=timeout,
    )
