"""A real uvicorn server on a free loopback port serving S3App behind a tiny top-level app
that routes with `is_s3_request`, as tideserve's own app does; boto3 clients against it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config

from tideserve.clock import WallClock
from tideserve.objectstore.s3_api import S3App, is_s3_request

KEY_ID = "AKIDTIDESERVETEST"
SECRET = "tideserve-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    port: int
    root: Path
    app: S3App

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, secret: str = SECRET, key_id: str = KEY_ID, **options: Any) -> Any:
        endpoint = options.pop("endpoint_url", self.url)
        config = Config(retries={"max_attempts": 1}, **options)
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=config,
        )


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("state") / "s3"
    s3_app = S3App(root, {KEY_ID: SECRET}.get, WallClock())

    async def top_level(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_s3_request(scope):
            await s3_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not s3"})

    port = free_port()
    config = uvicorn.Config(
        top_level, host="127.0.0.1", port=port, lifespan="off", ws="none", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield S3Server(port, root, s3_app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    return s3_server.client()


_counter = iter(range(10**6))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bucket-{next(_counter)}"
    s3.create_bucket(Bucket=name)
    return name
