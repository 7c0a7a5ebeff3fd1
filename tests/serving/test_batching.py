"""Adaptive batching at a real instance process, over real HTTP: concurrent requests joined
into one predict, each answered with exactly its own rows; a bad request fails alone, as it
would unbatched; off unless the model's Environment asks for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tests.serving.test_instance import instance, wait_ready

pytestmark = pytest.mark.integration

# The framework's own predict_fn over a model that writes down how many rows each predict
# call got, and takes half a second per call, so that requests arriving meanwhile queue.
RECORDING_MODEL = """
    import time
    from pathlib import Path

    import joblib

    class Recording:
        def __init__(self, model, log):
            self.model, self.log = model, log

        def predict(self, X):
            with open(self.log, "a") as f:
                f.write(f"{len(X)}\\n")
            time.sleep(0.5)
            return self.model.predict(X)

    def model_fn(model_dir):
        model = joblib.load(Path(model_dir) / "model.joblib")
        return Recording(model, Path(model_dir) / "calls.log")
"""
ROW_COUNTS = list(range(1, 13))  # twelve requests of 1..12 rows


def recording_instance(root: Path, env: dict[str, str]) -> Iterator[dict]:
    model_dir = builders.sklearn_dir(root, fmt="joblib",
                                     files={"code/inference.py": RECORDING_MODEL})
    with instance(model_dir, "--threads", "1", env=env) as running:
        wait_ready(running)
        yield running


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    # A delay no test would survive: with one prediction thread no request waits for it (an
    # idle instance predicts at once; a queue goes as soon as the running predict ends).
    env = {"TIDESERVE_MAX_BATCH_SIZE": "32", "TIDESERVE_MAX_BATCH_DELAY_MS": "600000"}
    yield from recording_instance(tmp_path_factory.mktemp("batched") / "model", env)


@pytest.fixture(scope="module")
def unbatched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    yield from recording_instance(tmp_path_factory.mktemp("unbatched") / "model", {})


def calls_log(server: dict) -> Path:
    return Path(server["log"]).parent / "model" / "calls.log"


def calls(server: dict) -> list[int]:
    path = calls_log(server)
    return [int(n) for n in path.read_text().split()] if path.exists() else []


def forget_calls(server: dict) -> None:
    calls_log(server).unlink(missing_ok=True)


def post(server: dict, body: bytes, content_type: str, accept: str = "") -> httpx.Response:
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return httpx.post(server["url"] + "/invocations", content=body, headers=headers, timeout=60)


def all_at_once(server: dict, requests: list[tuple[bytes, str, str]]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(lambda r: post(server, *r), requests))


def mixed_requests(X: np.ndarray) -> list[tuple[bytes, str, str]]:
    """Request i holds ROW_COUNTS[i] rows, in CSV or JSON, asking for JSON or CSV back."""
    out, start = [], 0
    for i, n in enumerate(ROW_COUNTS):
        rows = X[start:start + n]
        start += n
        body, kind = ((csv_rows(rows), "text/csv") if i % 2 else
                      (json.dumps(rows.tolist()).encode(), "application/json"))
        out.append((body, kind, "text/csv" if i % 3 == 0 else "application/json"))
    return out


def answer(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"] == "text/csv":
        return [int(v) for v in response.text.split()]
    return response.json()  # type: ignore[no-any-return]


def test_concurrent_requests_are_joined_and_each_gets_exactly_its_rows(batched: dict) -> None:
    model, X = iris()
    forget_calls(batched)
    requests = mixed_requests(X)
    responses = all_at_once(batched, requests)
    start = 0
    for (_, _, accept), n, response in zip(requests, ROW_COUNTS, responses, strict=True):
        assert response.headers["content-type"] == accept
        assert answer(response) == model.predict(X[start:start + n]).tolist()
        start += n
    seen = calls(batched)
    assert sum(seen) == sum(ROW_COUNTS)  # every row predicted once: no request ran twice
    assert len(seen) < len(ROW_COUNTS)  # and some predict calls took several requests


def test_a_malformed_request_fails_alone_with_its_unbatched_error(
    batched: dict, unbatched: dict
) -> None:
    model, X = iris()
    bad = [
        (b"5.1,abc,1.4,0.2", "text/csv", ""),  # does not decode
        (b"5.1,3.5,1.4", "text/csv", ""),  # three features for a four-feature model
        (b"nan,3.5,1.4,0.2", "text/csv", ""),  # decodes, joins, and makes the predict raise
    ]
    good = [(csv_rows(X[i:i + 3]), "text/csv", "") for i in range(0, 24, 3)]
    requests = good[:4] + bad + good[4:]
    responses = all_at_once(batched, requests)
    for (body, _, _), response in zip(requests, responses, strict=True):
        if any(body == b for b, _, _ in bad):
            alone = post(unbatched, body, "text/csv")
            assert response.status_code == alone.status_code != 200
            assert response.text == alone.text
        else:
            rows = np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
            assert answer(response) == model.predict(rows).tolist()


def test_a_request_to_an_idle_instance_does_not_wait_for_the_delay(batched: dict) -> None:
    model, X = iris()
    forget_calls(batched)
    for i in range(3):  # one after another: each finds the instance idle
        assert answer(post(batched, csv_rows(X[i:i + 1]), "text/csv")) == \
            model.predict(X[i:i + 1]).tolist()
    assert calls(batched) == [1, 1, 1]


def test_batching_is_off_unless_the_environment_asks(unbatched: dict) -> None:
    _, X = iris()
    forget_calls(unbatched)
    all_at_once(unbatched, mixed_requests(X))
    assert sorted(calls(unbatched)) == ROW_COUNTS  # one predict per request


@pytest.mark.parametrize("env, message", [
    ({"TIDESERVE_MAX_BATCH_SIZE": "many"}, "TIDESERVE_MAX_BATCH_SIZE='many' is not a whole"),
    ({"TIDESERVE_MAX_BATCH_SIZE": "8", "TIDESERVE_MAX_BATCH_DELAY_MS": "-1"},
     "TIDESERVE_MAX_BATCH_DELAY_MS=-1.0 must be 0 or more"),
])
def test_a_malformed_batching_setting_fails_the_start(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    model_dir = builders.sklearn_dir(tmp_path / "model")
    with instance(model_dir, env=env) as running:
        assert running["proc"].wait(120) == 1
        assert message in running["log"].read_text()
