"""One multi-model instance app per runtime, in process, over real archives in an embedded
store's layout: each TargetModel answers with its own model, whatever the framework, and
each archive's own code/inference.py runs for it."""

from __future__ import annotations

import asyncio
import json
import tarfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tideserve.serving.multi_model import build_app

CSV, JSON = "text/csv", "application/json"

HANDLER = """
def predict_fn(data, model):
    return model.predict(data) + {offset}
"""


def pack(directory: Path, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)


def app_over(tmp_path: Path, runtime: str, dirs: dict[str, Path], monkeypatch):
    store = tmp_path / "s3"
    for name, directory in dirs.items():
        pack(directory, store / "bucket" / "models" / name)
    monkeypatch.setenv("TIDESERVE_MULTI_MODEL_URL", "s3://bucket/models/")
    monkeypatch.setenv("TIDESERVE_MULTI_MODEL_OBJECT_ROOT", str(store))
    monkeypatch.setenv("TIDESERVE_MODEL_CACHE_MEMORY_MB", "64")
    args = SimpleNamespace(runtime=runtime, model_dir=tmp_path / "cache", threads=1,
                           trust_pickle=False, max_payload_mb=6.0, max_async_payload_mb=6.0)
    (tmp_path / "cache").mkdir()
    return build_app(args, token=None)


def invoke(app, target: str, body: bytes, content_type: str = CSV) -> tuple[int, dict, bytes]:
    async def run() -> tuple[int, dict, bytes]:
        scope = {"type": "http", "path": "/invocations", "method": "POST", "headers": [
            (b"x-amzn-sagemaker-target-model", target.encode()),
            (b"content-type", content_type.encode()), (b"accept", JSON.encode())]}
        inbox = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            if inbox:
                return inbox.pop()
            await asyncio.Event().wait()
            return {}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
        return sent[0]["status"], headers, sent[1]["body"]

    return asyncio.run(run())


def answer(app, target: str, body: bytes, content_type: str = CSV) -> np.ndarray:
    status, headers, out = invoke(app, target, body, content_type)
    assert status == 200, out
    assert "x-tideserve-multi-model" in headers
    return np.asarray(json.loads(out))


def test_sklearn_archives_each_with_their_own_inference_py(tmp_path, monkeypatch) -> None:
    model, X = iris()
    dirs = {f"m{k}.tar.gz": builders.sklearn_dir(
        tmp_path / f"m{k}", files={"code/inference.py": HANDLER.format(offset=10 * k)})
        for k in (1, 2)}
    app = app_over(tmp_path, "sklearn", dirs, monkeypatch)
    for k in (1, 2):
        got = answer(app, f"m{k}.tar.gz", csv_rows(X[:5]))
        np.testing.assert_array_equal(got, model.predict(X[:5]) + 10 * k)
    status, headers, body = invoke(app, "m3.tar.gz", csv_rows(X[:1]))
    assert (status, headers["x-tideserve-error"]) == (400, "ValidationError")
    assert body.startswith(b"Failed to download model data(bucket: bucket, key: models/m3")


def test_xgboost_archives(tmp_path, monkeypatch) -> None:
    import xgboost

    booster, X = builders.breast_cancer_xgboost()
    app = app_over(tmp_path, "xgboost", {"a.tar.gz": builders.xgboost_dir(tmp_path / "a")},
                   monkeypatch)
    np.testing.assert_allclose(answer(app, "a.tar.gz", csv_rows(X[:4])),
                               booster.predict(xgboost.DMatrix(X[:4])), rtol=1e-6)


def test_onnx_archives(tmp_path, monkeypatch) -> None:
    model, X = iris()
    app = app_over(tmp_path, "onnx", {"tenant1/a.tar.gz": builders.onnx_dir(tmp_path / "a")},
                   monkeypatch)
    got = answer(app, "tenant1/a.tar.gz", json.dumps(X[:6].tolist()).encode(), JSON)
    assert got.tolist() == model.predict(X[:6]).tolist()


def test_pytorch_archives(tmp_path, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    dirs, layers = {}, {}
    for k in (1, 2):
        torch.manual_seed(k)
        layers[k] = torch.nn.Linear(4, 2)
        directory = builders.model_dir(tmp_path / f"t{k}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.script(layers[k]).save(str(directory / "model.pt"))
        dirs[f"t{k}.tar.gz"] = directory
    app = app_over(tmp_path, "pytorch", dirs, monkeypatch)
    rows = [[1.0, 2.0, 3.0, 4.0]]
    for k in (1, 2):
        expected = layers[k](torch.tensor(rows)).detach().numpy()
        got = answer(app, f"t{k}.tar.gz", json.dumps(rows).encode(), JSON)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_models_lists_what_is_loaded(tmp_path, monkeypatch) -> None:
    _, X = iris()
    app = app_over(tmp_path, "sklearn", {"a.tar.gz": builders.sklearn_dir(tmp_path / "a")},
                   monkeypatch)
    answer(app, "a.tar.gz", csv_rows(X[:1]))
    loaded = app.cache.loaded()
    assert [m.target for m in loaded] == ["a.tar.gz"] and loaded[0].size > 0


def test_a_slow_load_answers_model_not_ready_and_the_retry_finds_it_loaded(
        tmp_path, monkeypatch) -> None:
    model, X = iris()
    app = app_over(tmp_path, "sklearn", {"a.tar.gz": builders.sklearn_dir(tmp_path / "a")},
                   monkeypatch)
    app.load_wait_s = 0.05
    load = app.cache.load
    app.cache.load = lambda directory: (time.sleep(0.5), load(directory))[1]
    status, headers, _ = invoke(app, "a.tar.gz", csv_rows(X[:1]))
    assert (status, headers["x-tideserve-error"]) == (429, "ModelNotReadyException")
    time.sleep(1.0)  # the load went on without the request
    status, headers, body = invoke(app, "a.tar.gz", csv_rows(X[:2]))
    assert status == 200 and headers["x-tideserve-multi-model"].startswith("hit=1")
    assert json.loads(body) == model.predict(X[:2]).tolist()
    assert [m.in_use for m in app.cache.loaded()] == [0]
