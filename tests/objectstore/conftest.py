"""A real uvicorn server on a free loopback port serving S3App behind a tiny top-level app
that routes with `is_s3_request`, as tideserve's own app does; boto3 clients against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support import serve_asgi
from tideserve.clock import WallClock
from tideserve.objectstore.s3_api import S3App, is_s3_request

KEY_ID = "AKIDTIDESERVETEST"
SECRET = "tideserve-test-secret"


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

    with serve_asgi(top_level) as url:
        yield S3Server(int(url.rsplit(":", 1)[1]), root, s3_app)


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    return s3_server.client()


_counter = iter(range(10**6))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bucket-{next(_counter)}"
    s3.create_bucket(Bucket=name)
    return name
