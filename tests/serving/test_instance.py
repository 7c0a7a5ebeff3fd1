"""The instance process on loopback: the container contract, served by a real model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tests.support import free_port

pytestmark = pytest.mark.integration

# A sklearn model with a handler that can be told to fail or to be slow.
HANDLER = """
    import time

    def predict_fn(data, model, context):
        if data[0][0] == -1:
            raise ZeroDivisionError("the model divided by zero\\ndetail for the log")
        if data[0][0] == -2:
            time.sleep(1.5)
        if context.custom_attributes == "echo":
            context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "echoed")
        return model.predict(data)
"""


@contextmanager
def instance(model_dir: Path, *extra: str, env: dict[str, str] | None = None,
             runtime: str = "sklearn") -> Iterator[dict]:
    """An instance process; yields {url, proc, log}. Always terminated, then killed."""
    port = free_port()
    log = model_dir.parent / f"instance-{port}.log"
    argv = [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", str(model_dir)]
    argv += ["--runtime", runtime, "--port", str(port), *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "log": log}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(server: dict, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server["proc"].poll() is not None:
            raise AssertionError(f"instance exited: {server['log'].read_text()}")
        try:
            if httpx.get(server["url"] + "/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("instance never answered /ping")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("instance")
    model_dir = builders.sklearn_dir(root / "model", files={"code/inference.py": HANDLER})
    with instance(model_dir, "--threads", "2", "--max-payload-mb", "0.01",
                  "--max-async-payload-mb", "0.05") as running:
        wait_ready(running)
        yield running


def invoke(server: dict, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        server["url"] + "/invocations",
        content=body,
        headers={"Content-Type": content_type, **headers},
        timeout=30,
    )


def test_csv_and_json_predictions_match_the_model(server: dict) -> None:
    model, X = iris()
    by_csv = invoke(server, csv_rows(X[:50]), "text/csv")
    assert by_csv.status_code == 200
    assert by_csv.headers["content-type"] == "application/json"
    assert by_csv.json() == model.predict(X[:50]).tolist()
    by_json = invoke(
        server, json.dumps(X[50:100].tolist()).encode(), "application/json", Accept="text/csv"
    )
    assert by_json.headers["content-type"] == "text/csv"
    assert [int(v) for v in by_json.text.split()] == model.predict(X[50:100]).tolist()
    assert "x-amzn-sagemaker-custom-attributes" not in by_json.headers


def test_custom_attributes_come_back_only_when_the_handler_sets_them(server: dict) -> None:
    echoed = invoke(
        server, b"5.1,3.5,1.4,0.2", "text/csv", **{"X-Amzn-SageMaker-Custom-Attributes": "echo"}
    )
    assert echoed.headers["x-amzn-sagemaker-custom-attributes"] == "echoed"
    quiet = invoke(
        server, b"5.1,3.5,1.4,0.2", "text/csv", **{"X-Amzn-SageMaker-Custom-Attributes": "other"}
    )
    assert "x-amzn-sagemaker-custom-attributes" not in quiet.headers


def test_a_crashing_handler_is_500_and_the_next_request_succeeds(server: dict) -> None:
    crashed = invoke(server, b"-1,0,0,0", "text/csv")
    assert crashed.status_code == 500
    assert crashed.text == "ZeroDivisionError: the model divided by zero"
    assert invoke(server, b"5.1,3.5,1.4,0.2", "text/csv").json() == [0]
    log = server["log"].read_text()
    assert "Traceback" in log and "detail for the log" in log


def test_client_errors_keep_their_status(server: dict) -> None:
    bad_csv = invoke(server, b"5.1,abc,1.4,0.2", "text/csv")
    assert (bad_csv.status_code, bad_csv.text) == (400, "CSV line 1: 'abc' is not a number.")
    assert invoke(server, b"<x/>", "application/xml").status_code == 415


def test_oversized_payloads_are_413(server: dict) -> None:
    big = b"1.0,2.0,3.0,4.0\n" * 1000  # 16 000 bytes over a 10 485-byte limit
    assert invoke(server, big, "text/csv").status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b"1.0,2.0,3.0,4.0\n" * 50

    streamed = httpx.post(
        server["url"] + "/invocations", content=chunks(), headers={"Content-Type": "text/csv"}
    )
    assert streamed.status_code == 413
    assert invoke(server, b"5.1,3.5,1.4,0.2", "text/csv").status_code == 200


def test_only_the_async_dispatchers_requests_get_the_async_limit(server: dict) -> None:
    model, X = iris()
    rows = np.tile(X, (10, 1))  # 1 500 rows, ~24 KB: past 0.01 MiB, within 0.05 MiB
    body = csv_rows(rows)
    assert 10_485 < len(body) < 52_428
    assert invoke(server, body, "text/csv").status_code == 413  # real-time: 0.01 MiB
    as_async = invoke(server, body, "text/csv", **{"X-Tideserve-Invocation": "async"})
    assert as_async.status_code == 200
    assert as_async.json() == model.predict(rows).tolist()
    assert invoke(server, body, "text/csv", **{"X-Tideserve-Invocation": "yes"}).status_code == 413
    huge = body * 4  # past the 0.05 MiB async limit too
    refused = invoke(server, huge, "text/csv", **{"X-Tideserve-Invocation": "async"})
    assert (refused.status_code, refused.text) == (
        413, "Request body is larger than the 52428 bytes this instance accepts.")


def test_ping_answers_during_a_long_prediction(server: dict) -> None:
    slow = threading.Thread(target=invoke, args=(server, b"-2,0,0,0", "text/csv"))
    slow.start()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert httpx.get(server["url"] + "/ping", timeout=5).status_code == 200
        assert time.monotonic() - started < 0.5
    finally:
        slow.join()


def test_execution_parameters_and_unknown_paths(server: dict) -> None:
    params = httpx.get(server["url"] + "/execution-parameters").json()
    assert params == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 1,
    }
    assert httpx.get(server["url"] + "/models").status_code == 404
    assert httpx.get(server["url"] + "/invocations").status_code == 405


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    model_dir = builders.sklearn_dir(tmp_path / "model", files={"code/inference.py": HANDLER})
    with instance(model_dir) as running:
        wait_ready(running)
        answer: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: answer.append(invoke(running, b"-2,0,0,0", "text/csv"))
        )
        slow.start()
        time.sleep(0.4)
        running["proc"].send_signal(signal.SIGTERM)
        slow.join(10)
        assert running["proc"].wait(15) == 0
        assert answer and answer[0].status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(running["url"] + "/ping", timeout=1)


def test_a_model_that_cannot_load_exits_1_with_the_reason(tmp_path: Path) -> None:
    model_dir = builders.sklearn_dir(tmp_path / "model", fmt="joblib")
    with instance(model_dir) as running:
        assert running["proc"].wait(60) == 1
        assert "trust_pickle" in running["log"].read_text()
