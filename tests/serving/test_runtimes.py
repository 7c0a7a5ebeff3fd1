"""Each runtime loaded in-process through load_runtime and invoked as the instance would."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.instance import load_runtime

JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def sklearn_runtime(tmp_path: Path):
    return load_runtime(builders.sklearn_dir(tmp_path / "m"), "sklearn", {}, False)


class TestScikitLearn:
    def test_json_rows_in_json_labels_out(self, sklearn_runtime) -> None:
        model, X = iris()
        result = sklearn_runtime.invoke(json.dumps(X[:20].tolist()).encode(), JSON, JSON, None)
        assert result.content_type == JSON
        assert json.loads(result.body) == model.predict(X[:20]).tolist()
        assert result.custom_attributes is None

    def test_csv_in_csv_out(self, sklearn_runtime) -> None:
        model, X = iris()
        result = sklearn_runtime.invoke(csv_rows(X[40:60]), "text/csv; charset=utf-8", CSV, None)
        assert result.content_type == CSV
        assert [int(v) for v in result.body.decode().split()] == model.predict(X[40:60]).tolist()

    def test_npy_in_npy_out(self, sklearn_runtime) -> None:
        model, X = iris()
        result = sklearn_runtime.invoke(_npy(X[100:]), NPY, NPY, None)
        assert result.content_type == NPY
        assert np.array_equal(np.load(io.BytesIO(result.body)), model.predict(X[100:]))

    @pytest.mark.parametrize(
        "body",
        [
            {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
            {"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
        ],
    )
    def test_json_objects_with_instances_or_inputs(self, sklearn_runtime, body) -> None:
        result = sklearn_runtime.invoke(json.dumps(body).encode(), JSON, JSON, None)
        assert json.loads(result.body) == [0, 2]

    def test_a_flat_json_list_is_one_row(self, sklearn_runtime) -> None:
        assert sklearn_runtime.invoke(b"[6.7, 3.0, 5.2, 2.3]", JSON, "", None).body == b"[2]"

    def test_absent_or_wildcard_accept_answers_json(self, sklearn_runtime) -> None:
        for accept in ("", "*/*"):
            assert sklearn_runtime.invoke(b"5.1,3.5,1.4,0.2", CSV, accept, None).body == b"[0]"

    def test_first_supported_type_in_accept_wins(self, sklearn_runtime) -> None:
        result = sklearn_runtime.invoke(b"5.1,3.5,1.4,0.2", CSV, "application/xml, text/csv", None)
        assert (result.body, result.content_type) == (b"0\n", CSV)

    def test_default_accept_comes_from_the_environment(self, tmp_path: Path) -> None:
        runtime = load_runtime(
            builders.sklearn_dir(tmp_path / "m"),
            "sklearn",
            {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": CSV},
            False,
        )
        assert runtime.invoke(b"5.1,3.5,1.4,0.2", CSV, "*/*", None).content_type == CSV

    def test_probabilities_per_request_or_per_model(self, tmp_path: Path, sklearn_runtime) -> None:
        model, X = iris()
        body = json.dumps(X[:5].tolist()).encode()
        asked = sklearn_runtime.invoke(body, JSON, JSON, "trace=1, predict_method=predict_proba")
        np.testing.assert_allclose(json.loads(asked.body), model.predict_proba(X[:5]))
        configured = load_runtime(
            builders.sklearn_dir(tmp_path / "p"),
            "sklearn",
            {"TIDESERVE_PREDICT_METHOD": "predict_proba"},
            False,
        )
        np.testing.assert_allclose(
            json.loads(configured.invoke(body, JSON, JSON, None).body), model.predict_proba(X[:5])
        )

    def test_unknown_predict_method_is_refused(self, tmp_path: Path, sklearn_runtime) -> None:
        with pytest.raises(InvokeError) as caught:
            sklearn_runtime.invoke(b"[[1,2,3,4]]", JSON, JSON, "predict_method=fit")
        assert caught.value.status == 400
        with pytest.raises(ValidationError, match="TIDESERVE_PREDICT_METHOD"):
            load_runtime(
                builders.sklearn_dir(tmp_path / "p"),
                "sklearn",
                {"TIDESERVE_PREDICT_METHOD": "fit"},
                False,
            )

    @pytest.mark.parametrize(
        ("body", "content_type", "status", "words"),
        [
            (b"5.1,3.5,oops,0.2", CSV, 400, "'oops' is not a number"),
            (b"5.1,3.5,1.4,0.2\n1,2", CSV, 400, "line 2 has 2 columns"),
            (b"", CSV, 400, "empty"),
            (b"[[5.1, 3.5", JSON, 400, "does not parse"),
            (b'{"rows": []}', JSON, 400, '"instances" or "inputs"'),
            (b"[[1, 2], [3]]", JSON, 400, "do not form an array"),
            (b"\xff\xfe", JSON, 400, "not valid UTF-8"),
            (b"not npy", NPY, 400, "not a numpy array"),
            (b"<x/>", "application/xml", 415, "application/xml"),
            (b"[[1, 2, 3, 4]]", "", 415, "Content type"),
        ],
    )
    def test_bad_requests_name_the_problem(
        self, sklearn_runtime, body, content_type, status, words
    ) -> None:
        with pytest.raises(InvokeError) as caught:
            sklearn_runtime.invoke(body, content_type, JSON, None)
        assert caught.value.status == status
        assert words in caught.value.message

    def test_unsupported_accept_is_415(self, sklearn_runtime) -> None:
        with pytest.raises(InvokeError) as caught:
            sklearn_runtime.invoke(b"[[5.1, 3.5, 1.4, 0.2]]", JSON, "application/xml", None)
        assert caught.value.status == 415
        assert "application/xml" in caught.value.message

    def test_a_model_that_raises_is_500_and_the_runtime_keeps_working(
        self, sklearn_runtime
    ) -> None:
        with pytest.raises(InvokeError) as caught:  # 3 features for a 4-feature model
            sklearn_runtime.invoke(b"[[1.0, 2.0, 3.0]]", JSON, JSON, None)
        assert caught.value.status == 500
        assert caught.value.message.startswith("ValueError: ")
        assert "\n" not in caught.value.message
        assert isinstance(caught.value.__cause__, ValueError)
        assert sklearn_runtime.invoke(b"[[5.1, 3.5, 1.4, 0.2]]", JSON, JSON, None).body == b"[0]"


class TestPickle:
    @pytest.mark.parametrize("fmt", ["joblib", "pkl"])
    def test_refused_without_trust(self, tmp_path: Path, fmt: str) -> None:
        directory = builders.sklearn_dir(tmp_path / "m", fmt)
        with pytest.raises(ValidationError, match="trust_pickle") as caught:
            load_runtime(directory, "sklearn", {}, trust_pickle=False)
        assert f"model.{fmt}" in caught.value.message

    def test_accepted_with_trust(self, tmp_path: Path) -> None:
        model, X = iris()
        directory = builders.sklearn_dir(tmp_path / "m", "joblib")
        runtime = load_runtime(directory, "sklearn", {}, trust_pickle=True)
        body = runtime.invoke(csv_rows(X[:10]), CSV, JSON, None).body
        assert json.loads(body) == model.predict(X[:10]).tolist()


def test_xgboost_json_model_answers_like_the_booster(tmp_path: Path) -> None:
    import xgboost

    booster, X = builders.breast_cancer_xgboost()
    runtime = load_runtime(builders.xgboost_dir(tmp_path / "m"), "xgboost", {}, False, threads=1)
    result = runtime.invoke(csv_rows(X[:30]), CSV, JSON, None)
    expected = booster.predict(xgboost.DMatrix(X[:30]))
    np.testing.assert_allclose(json.loads(result.body), expected, rtol=1e-6)
    margins = runtime.invoke(csv_rows(X[:3]), CSV, JSON, "predict_method=predict_margin")
    np.testing.assert_allclose(
        json.loads(margins.body),
        booster.predict(xgboost.DMatrix(X[:3]), output_margin=True),
        rtol=1e-5,
    )


def test_onnx_model_converted_by_skl2onnx(tmp_path: Path) -> None:
    model, X = iris()
    runtime = load_runtime(builders.onnx_dir(tmp_path / "m"), "onnx", {}, False, threads=1)
    labels = runtime.invoke(json.dumps(X.tolist()).encode(), JSON, JSON, None)
    assert json.loads(labels.body) == model.predict(X).tolist()
    proba = runtime.invoke(csv_rows(X[:5]), CSV, JSON, "predict_method=predict_proba")
    np.testing.assert_allclose(json.loads(proba.body), model.predict_proba(X[:5]), atol=1e-5)


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"no model file \(.onnx\)"):
        load_runtime(builders.model_dir(tmp_path / "m", {"notes.txt": "hi"}), "onnx", {}, False)


def test_pytorch_without_torch_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    try:
        import torch  # noqa: F401
    except ImportError:
        directory = builders.model_dir(tmp_path / "m")
        (directory / "model.pt").write_bytes(b"not loaded")
        with pytest.raises(ValidationError, match="needs the torch package"):
            load_runtime(directory, "pytorch", {}, False)
    else:
        pytest.skip("torch is installed; see test_pytorch_torchscript")


def test_pytorch_torchscript(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(4, 2)
    directory = builders.model_dir(tmp_path / "m")
    with warnings.catch_warnings():  # torch 2.13 deprecates scripting; users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(linear).save(str(directory / "model.pt"))
    runtime = load_runtime(directory, "pytorch", {}, False, threads=1)
    rows = [[1.0, 2.0, 3.0, 4.0]]
    expected = linear(torch.tensor(rows)).detach().numpy()
    got = json.loads(runtime.invoke(json.dumps(rows).encode(), JSON, JSON, None).body)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_pytorch_exported_program(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(4, 2)
    directory = builders.model_dir(tmp_path / "m")
    example = (torch.zeros(3, 4),)
    program = torch.export.export(linear, example,
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(directory / "model.pt2"))
    runtime = load_runtime(directory, "pytorch", {}, False, threads=1)
    rows = [[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]]
    expected = linear(torch.tensor(rows)).detach().numpy()
    got = json.loads(runtime.invoke(json.dumps(rows).encode(), JSON, JSON, None).body)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
