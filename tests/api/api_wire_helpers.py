"""Helpers for the wire-protocol tests: a real uvicorn server on a free loopback port in a
background thread, boto3 clients aimed at it, and CloudWatch models forced to one protocol."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from starlette.applications import Starlette
from starlette.types import ASGIApp
from tests.support import serve_asgi

ACCESS_KEY = "AKIDTIDESERVETEST"
SECRET_KEY = "tideserve-test-secret"
REGION = "us-east-1"


def secret_for(access_key_id: str) -> str | None:
    return {ACCESS_KEY: SECRET_KEY}.get(access_key_id)


def serve(app: ASGIApp | Starlette) -> contextlib.AbstractContextManager[str]:
    """Run `app` until the block ends; yields its base URL."""
    return serve_asgi(app)


def aws_client(
    service: str,
    endpoint_url: str,
    *,
    data_path: Path | None = None,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    max_attempts: int = 1,
) -> Any:
    """A boto3 client pointed at `endpoint_url`; `data_path` prepends a model directory."""
    session = botocore.session.get_session()
    if data_path is not None:
        session.get_component("data_loader").search_paths.insert(0, str(data_path))
    return boto3.session.Session(botocore_session=session).client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
    )
