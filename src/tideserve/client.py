"""boto3 clients for a running tideserve, as a user would make them: the endpoint URL plus
the credentials file `tideserve up` wrote."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "TIDESERVE_URL"  # the CLI's server when --url is not given


def default_url() -> str:
    """$TIDESERVE_URL, else `tideserve up`'s own default address."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


def session(state_dir: Path | str = ".tideserve", region: str = "us-east-1") -> boto3.Session:
    creds = Path(state_dir) / "credentials"
    if creds.exists() and "AWS_SHARED_CREDENTIALS_FILE" not in os.environ:
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(creds.resolve())
    return boto3.Session(region_name=region)


def client(service: str, url: str = DEFAULT_URL, state_dir: Path | str = ".tideserve",
           **config: Any) -> Any:
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"},
                 read_timeout=config.pop("read_timeout", 70), **config)
    return session(state_dir).client(service, endpoint_url=url, config=cfg)


# tideserve's own API (spot interruption on demand): a botocore model shipped in the package,
# in botocore's data layout, so boto3 makes a client of it as of any AWS service.
MODELS_DIR = Path(__file__).parent / "api" / "models"


def tideserve_client(url: str = DEFAULT_URL, state_dir: Path | str = ".tideserve") -> Any:
    sess = session(state_dir)
    loader = sess._session.get_component("data_loader")
    if str(MODELS_DIR) not in loader.search_paths:
        loader.search_paths.append(str(MODELS_DIR))
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"})
    return sess.client("tideserve", endpoint_url=url, config=cfg)
