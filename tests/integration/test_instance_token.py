"""The router is the only way into an instance: a request straight to an instance's port
without the instance's token is refused, with a wrong one too, while invocations through
the router (which adds it) work; the token never appears in the instance's argv."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows
from tideserve.serving.instance_token import TOKEN_HEADER

pytestmark = pytest.mark.integration


def instance_rows(server: RunningServer, endpoint: str) -> list[tuple[int, str]]:
    with sqlite3.connect(server.state_dir / "tideserve.db") as db:
        rows = db.execute("SELECT pid, url FROM instances WHERE endpoint_name = ?", (endpoint,))
        return [(r[0], r[1]) for r in rows]


def test_an_unsigned_post_to_an_instance_port_is_refused(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "guarded", str(archive))
    wait_in_service(sm, "guarded")
    [(pid, url)] = instance_rows(server, "guarded")
    body = csv_rows(X[:2])

    direct = httpx.post(url + "/invocations", content=body,
                        headers={"Content-Type": "text/csv"}, timeout=5)
    assert direct.status_code == 403
    assert "X-Tideserve-Instance-Token" in direct.text
    forged = httpx.post(url + "/invocations", content=body, timeout=5,
                        headers={"Content-Type": "text/csv", TOKEN_HEADER: "guess"})
    assert forged.status_code == 403
    assert httpx.get(url + "/execution-parameters", timeout=5).status_code == 403
    assert httpx.get(url + "/ping", timeout=5).status_code == 200  # liveness stays open

    resp = rt.invoke_endpoint(EndpointName="guarded", Body=body, ContentType="text/csv")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Body"].read()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"TOKEN" not in argv.upper() and len(argv) > 0
