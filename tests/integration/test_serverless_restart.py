"""kill -9 the server, start it again on the same state directory: a serverless endpoint is
InService again with its provisioned workers warm, and serves."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from tests.integration.test_serverless_endpoints import deploy, invoke, upload, wait_for
from tests.support import RunningServer, start_server, stop_server

pytestmark = pytest.mark.integration

CONFIG = {"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 1}


def worker_pids(server: RunningServer, endpoint: str) -> set[int]:
    with sqlite3.connect(server.state_dir / "tideserve.db") as db:
        rows = db.execute("SELECT pid FROM instances WHERE endpoint_name = ?", (endpoint,))
        return {int(pid) for (pid,) in rows}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_serverless_endpoint_survives_a_server_kill(tmp_path, trained):
    model, X, archive, _ = trained
    state = tmp_path / "state"
    first = start_server(state)
    try:
        deploy(first, "sl-durable", upload(first, archive, "models", "durable.tar.gz"), **CONFIG)
        invoke(first.client("sagemaker-runtime"), "sl-durable", X[:3])
        before = worker_pids(first, "sl-durable")
        assert len(before) == 1
        os.kill(first.proc.pid, signal.SIGKILL)  # the server alone: no chance to clean up
        first.proc.wait(timeout=10)
    finally:
        stop_server(first)

    again = start_server(state)
    try:
        sm, rt = again.client("sagemaker"), again.client("sagemaker-runtime")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="sl-durable", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        variant = sm.describe_endpoint(EndpointName="sl-durable")["ProductionVariants"][0]
        assert variant["CurrentServerlessConfig"] == CONFIG
        assert variant["DesiredServerlessConfig"] == CONFIG
        after = wait_for(lambda: worker_pids(again, "sl-durable"), 10, "a provisioned worker")
        assert len(after) == 1 and not after & before and all(map(alive, after))
        assert not any(map(alive, before))  # the old worker did not outlive its server

        predicted, seconds = invoke(rt, "sl-durable", X[:8])
        assert list(predicted) == list(model.predict(X[:8]))
        assert seconds < 1.0  # served warm by the provisioned worker, no cold start
    finally:
        stop_server(again)
