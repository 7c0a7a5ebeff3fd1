"""Instances that die, hang or crash: requests in flight on a killed instance are answered by
its peer, and no client sees a raw disconnect."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from tests.integration.faulty_models import SLOW_HANDLER, deploy_python, model_tree
from tests.integration.test_realtime_endpoints import wait_in_service
from tests.integration.test_serving_edges import instance_pids
from tests.support import RunningServer

pytestmark = pytest.mark.integration


def _wait_for_replacement(server: RunningServer, sm, name: str, victim: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = instance_pids(server, name)
        variant = sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        if victim not in pids and len(pids) == 2 and variant["CurrentInstanceCount"] == 2:
            return
        time.sleep(0.1)
    pytest.fail(f"{name}'s instance {victim} was never replaced")


def test_killing_an_instance_under_load_fails_no_request(server: RunningServer, tmp_path):
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy_python(sm, "slowpoke", model_tree(tmp_path / "slow", SLOW_HANDLER), count=2)
    wait_in_service(sm, "slowpoke")
    results: list[object] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                resp = rt.invoke_endpoint(EndpointName="slowpoke", Body=b"[1, 2]",
                                          ContentType="application/json")
                results.append(json.loads(resp["Body"].read()))
            except Exception as exc:  # every failure is kept and reported
                results.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for victim in range(3):  # each kill lands while both instances are mid-prediction
            time.sleep(0.6)
            pid = instance_pids(server, "slowpoke")[victim % 2]
            os.kill(pid, signal.SIGKILL)
            _wait_for_replacement(server, sm, "slowpoke", pid)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures[:3]
    assert len(results) >= 8 and all(r == [1, 2] for r in results)
