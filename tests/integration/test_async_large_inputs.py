"""Async inputs far above InvokeEndpoint's 6 MiB, through boto3 against the session's real
`tideserve up`: a 20 MB and a 200 MB CSV uploaded to the embedded S3 (multipart, as boto3 does
for large files), predicted by a real scikit-learn LogisticRegression, every output row checked
in order; a malformed row deep in a large file gives a failure object that names the line,
while the good requests beside it still complete; an input over 1 GB is refused at once."""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_async_endpoints import (
    deploy_async,
    ensure_bucket,
    object_path,
    read_object,
)
from tests.integration.test_realtime_endpoints import wait_in_service
from tests.support import RunningServer

pytestmark = pytest.mark.integration

POOL_ROWS = 5000


@pytest.fixture(scope="module")
def pool(trained):
    """Distinct rows near the breast-cancer data, as CSV lines, with the model's prediction for
    each line as the instance will parse it (the text, not the unrounded floats)."""
    model, X, _, _ = trained
    rng = np.random.default_rng(7)
    rows = X[rng.integers(0, len(X), POOL_ROWS)] * rng.normal(1.0, 0.05, (POOL_ROWS, X.shape[1]))
    lines = [",".join(f"{v:.6g}" for v in row) for row in rows]
    parsed = np.array([[float(c) for c in line.split(",")] for line in lines])
    return lines, model.predict(parsed)


def csv_of_size(pool, megabytes: float, seed: int) -> tuple[bytes, np.ndarray]:
    """About `megabytes` MB of CSV drawn from the pool in a random order, and the prediction
    each of its rows must get."""
    lines, predicted = pool
    per_row = sum(len(line) + 1 for line in lines) / len(lines)
    picks = np.random.default_rng(seed).integers(0, len(lines), int(megabytes * 1e6 / per_row))
    return "\n".join(lines[i] for i in picks).encode(), predicted[picks]


def upload(server: RunningServer, key: str, body: bytes) -> str:
    s3 = ensure_bucket(server, "big-inputs")
    s3.upload_fileobj(io.BytesIO(body), "big-inputs", key)  # multipart past 8 MiB
    return f"s3://big-inputs/{key}"


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, trained) -> str:
    sm = server.client("sagemaker")
    deploy_async(sm, "large-inputs", str(trained[2]), max_concurrent=2)
    wait_in_service(sm, "large-inputs")
    return "large-inputs"


@pytest.fixture(autouse=True)
def delete_endpoints_afterwards():
    """The endpoint here is shared by the module's tests (conftest's would delete it)."""
    yield


@pytest.fixture(scope="module", autouse=True)
def delete_the_endpoint_at_the_end(server: RunningServer):
    yield
    server.client("sagemaker").delete_endpoint(EndpointName="large-inputs")


def wait_for_results(server: RunningServer, answers: list[dict], timeout: float) -> None:
    """Until each request has its output or its failure object (either one settles it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(object_path(server, a["OutputLocation"]).exists()
               or object_path(server, a["FailureLocation"]).exists() for a in answers):
            return
        time.sleep(0.2)
    pytest.fail("some requests never settled")


def outputs(server: RunningServer, answer: dict) -> np.ndarray:
    failure = object_path(server, answer["FailureLocation"])
    assert not failure.exists(), failure.read_text()
    return np.asarray(json.loads(read_object(server, answer["OutputLocation"])))


def invoke(server: RunningServer, endpoint: str, location: str) -> dict:
    return server.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=endpoint, InputLocation=location, ContentType="text/csv")


def test_a_20_mb_and_a_200_mb_input_are_predicted_row_for_row(server, endpoint, pool):
    inputs = [csv_of_size(pool, 20, seed=1), csv_of_size(pool, 200, seed=2)]
    assert len(inputs[0][0]) > 3 * 6 * 2**20 and len(inputs[1][0]) > 30 * 6 * 2**20
    started = time.monotonic()
    answers = [invoke(server, endpoint, upload(server, f"rows-{i}.csv", body))
               for i, (body, _) in enumerate(inputs)]
    wait_for_results(server, answers, timeout=240)
    for answer, (body, expected) in zip(answers, inputs, strict=True):
        got = outputs(server, answer)
        assert got.shape == expected.shape, f"{len(body)} bytes: {got.shape} rows back"
        assert np.array_equal(got, expected)
    print(f"20 MB + 200 MB async inputs done in {time.monotonic() - started:.1f} s")


def test_a_malformed_row_deep_in_a_large_file_is_a_clear_failure_and_loses_nothing(
        server, endpoint, pool):
    good, expected = csv_of_size(pool, 20, seed=3)
    lines = good.split(b"\n")
    bad_line = 50_000
    lines[bad_line - 1] = lines[bad_line - 1].replace(b",", b",oops,", 1)
    bad = b"\n".join(lines)
    first = invoke(server, endpoint, upload(server, "good-before.csv", good))
    broken = invoke(server, endpoint, upload(server, "broken.csv", bad))
    after = invoke(server, endpoint, upload(server, "good-after.csv", good))
    wait_for_results(server, [first, broken, after], timeout=120)
    reason = read_object(server, broken["FailureLocation"]).decode()
    assert "(400)" in reason and f"CSV line {bad_line}: 'oops' is not a number." in reason
    assert not object_path(server, broken["OutputLocation"]).exists()
    for answer in (first, after):
        assert np.array_equal(outputs(server, answer), expected)


def test_an_input_over_1_gb_is_refused_when_it_is_submitted(server, endpoint):
    # A sparse file in the embedded store's layout: 1 GiB + 1 byte without writing a gigabyte.
    location = "s3://big-inputs/too-big.csv"
    path = object_path(server, location)
    # Private, as everything under the state dir is (test_request_integrity checks that).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600), "wb") as f:
        f.truncate(2**30 + 1)
    try:
        with pytest.raises(ClientError) as refused:
            invoke(server, endpoint, location)
    finally:
        path.unlink()
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert f"is {2**30 + 1} bytes, larger than the {2**30} bytes" in error["Message"]
