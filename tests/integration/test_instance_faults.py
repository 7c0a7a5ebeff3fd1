"""Instances that die, hang or crash: requests in flight on a killed instance are answered by
its peer, and no client sees a raw disconnect."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.faulty_models import (
    CRASHING_HANDLER,
    SLOW_HANDLER,
    deploy_python,
    model_tree,
)
from tests.integration.test_realtime_endpoints import wait_in_service
from tests.integration.test_serving_edges import instance_pids
from tests.support import RunningServer, start_server, stop_server

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


def test_a_timed_out_call_is_answered_before_the_client_gives_up_and_not_rerun(tmp_path):
    """--model-timeout 1 against a 1.5-s model on one instance of two prediction threads:
    four concurrent calls each get AWS's timeout ModelError, the client does not retry (it
    was answered), and the two calls still queued when their time ran out never run."""
    server = start_server(tmp_path / "state", extra=["--model-timeout", "1"])
    try:
        sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
        log = tmp_path / "predictions.log"
        deploy_python(sm, "sloth", model_tree(tmp_path / "slow", SLOW_HANDLER), count=1,
                      env={"SLEEP_SECONDS": "1.5", "PREDICT_LOG": str(log)})
        wait_in_service(sm, "sloth")

        def call(_: int) -> tuple[str, float]:
            t0 = time.monotonic()
            try:
                rt.invoke_endpoint(EndpointName="sloth", Body=b"[1]",
                                   ContentType="application/json")
            except rt.exceptions.ModelError as exc:
                return exc.response["Error"]["Message"], time.monotonic() - t0
            return "answered", time.monotonic() - t0

        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(call, range(4)))
        for message, seconds in outcomes:
            assert "Your invocation timed out while waiting for a response from container " \
                   "primary" in message
            assert seconds < 3
        time.sleep(2)  # past the time the queued two would have started and finished
        assert log.read_text().count("started") == 2
    finally:
        stop_server(server)


def test_a_model_that_crashes_on_every_request_is_restarted_with_backoff(
    server: RunningServer, tmp_path
):
    """Every request kills the instance. Restarts wait 1, 2, 4 s: over 8 s of steady traffic
    that is at most 4 instances (it was 9 in 10 s), and DescribeEndpoint says why."""
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy_python(sm, "kamikaze", model_tree(tmp_path / "crash", CRASHING_HANDLER), count=1)
    wait_in_service(sm, "kamikaze")
    pids: set[int] = set()
    statuses: list[dict] = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        pids.update(instance_pids(server, "kamikaze"))
        with pytest.raises(rt.exceptions.ClientError):
            rt.invoke_endpoint(EndpointName="kamikaze", Body=b"[1]",
                               ContentType="application/json")
        variant = sm.describe_endpoint(EndpointName="kamikaze")["ProductionVariants"][0]
        statuses.extend(variant.get("VariantStatus", []))
        time.sleep(0.2)
    assert 2 <= len(pids) <= 4, pids
    messages = [s["StatusMessage"] for s in statuses if s["Status"] == "Updating"]
    assert any("exited with status 3" in m and "Waiting" in m for m in messages), statuses[-3:]
    text = httpx.get(server.url + "/metrics").text
    assert "InstanceExits" in text
