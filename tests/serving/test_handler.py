"""The inference-toolkit handler convention: code/inference.py over a framework runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.serving import builders
from tests.serving.builders import iris
from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.instance import load_runtime

FOUR_FUNCTIONS = """
    import json, os
    import skops.io

    calls = []

    def model_fn(model_dir):
        calls.append("model_fn")
        return skops.io.load(os.path.join(model_dir, "model.skops"))

    def input_fn(input_data, content_type, context):
        # JSON arrives as str; a custom shape {"rows": [...]} proves this ran.
        assert isinstance(input_data, str), type(input_data)
        return json.loads(input_data)["rows"]

    def predict_fn(data, model, context):
        context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" +
                                    (context.custom_attributes or "none"))
        return model.predict(data)

    def output_fn(prediction, accept):
        return json.dumps({"labels": prediction.tolist(), "accept": accept}), "application/json"
"""

TRANSFORM = """
    import json

    def model_fn(model_dir, context=None):
        return {"scale": 10}

    def transform_fn(model, input_data, content_type, accept):
        values = json.loads(input_data)
        return json.dumps([v * model["scale"] for v in values])
"""


def test_all_four_functions_with_and_without_context(tmp_path: Path) -> None:
    model, X = iris()
    directory = builders.sklearn_dir(tmp_path / "m", files={"code/inference.py": FOUR_FUNCTIONS})
    runtime = load_runtime(directory, "sklearn", {}, False)
    body = json.dumps({"rows": X[:7].tolist()}).encode()
    result = runtime.invoke(body, "application/json", "", "user=42")
    assert json.loads(result.body) == {
        "labels": model.predict(X[:7]).tolist(),
        "accept": "application/json",  # absent Accept reaches output_fn as the default
    }
    assert result.content_type == "application/json"
    assert result.custom_attributes == "seen=user=42"


def test_framework_model_fn_with_a_user_predict_fn(tmp_path: Path) -> None:
    model, X = iris()
    code = """
        def predict_fn(data, model):
            return model.predict_proba(data)[:, 0]
    """
    directory = builders.sklearn_dir(tmp_path / "m", files={"code/inference.py": code})
    runtime = load_runtime(directory, "sklearn", {}, False)
    result = runtime.invoke(builders.csv_rows(X[:3]), "text/csv", "application/json", None)
    assert json.loads(result.body) == pytest.approx(model.predict_proba(X[:3])[:, 0].tolist())


def test_transform_fn_alone_and_the_content_type_defaults_to_accept(tmp_path: Path) -> None:
    directory = builders.model_dir(tmp_path / "m", {"code/inference.py": TRANSFORM})
    runtime = load_runtime(directory, "python", {}, False)
    result = runtime.invoke(b"[1, 2.5]", "application/json", "application/json", None)
    assert (result.body, result.content_type) == (b"[10, 25.0]", "application/json")


def test_transform_fn_with_predict_fn_is_refused(tmp_path: Path) -> None:
    code = TRANSFORM + "\n    def predict_fn(data, model):\n        return data\n"
    directory = builders.model_dir(tmp_path / "m", {"code/inference.py": code})
    with pytest.raises(ValidationError, match="transform_fn together with predict_fn"):
        load_runtime(directory, "python", {}, False)


def test_sagemaker_program_names_the_module(tmp_path: Path) -> None:
    directory = builders.model_dir(
        tmp_path / "m",
        {"code/serve_me.py": TRANSFORM, "code/inference.py": "raise RuntimeError('not me')"},
    )
    runtime = load_runtime(directory, "python", {"SAGEMAKER_PROGRAM": "serve_me.py"}, False)
    assert runtime.invoke(b"[1]", "application/json", "*/*", None).body == b"[10]"
    with pytest.raises(ValidationError, match="missing.py"):
        load_runtime(directory, "python", {"SAGEMAKER_PROGRAM": "missing.py"}, False)


def test_python_runtime_needs_a_model_fn(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="model_fn"):
        load_runtime(builders.model_dir(tmp_path / "m"), "python", {}, False)


def test_a_raising_handler_is_500_with_the_first_line(tmp_path: Path) -> None:
    code = """
        def model_fn(model_dir):
            return None

        def predict_fn(data, model):
            if data[0][0] < 0:
                raise RuntimeError("negative input\\nsecond line stays in the log")
            return data
    """
    directory = builders.model_dir(tmp_path / "m", {"code/inference.py": code})
    runtime = load_runtime(directory, "python", {}, False)
    with pytest.raises(InvokeError) as caught:
        runtime.invoke(b"[[-1]]", "application/json", "application/json", None)
    assert caught.value.status == 500
    assert caught.value.message == "RuntimeError: negative input"
    assert runtime.invoke(b"[[1]]", "application/json", "application/json", None).body == b"[[1]]"


def test_a_toolkit_error_keeps_its_status(tmp_path: Path) -> None:
    code = """
        class GenericInferenceToolkitError(Exception):
            def __init__(self, status_code, message):
                super().__init__(message)
                self.status_code = status_code

        def model_fn(model_dir):
            return None

        def input_fn(input_data, content_type):
            raise GenericInferenceToolkitError(422, "rows must be sorted")
    """
    directory = builders.model_dir(tmp_path / "m", {"code/inference.py": code})
    runtime = load_runtime(directory, "python", {}, False)
    with pytest.raises(InvokeError) as caught:
        runtime.invoke(b"[1]", "application/json", "application/json", None)
    assert (caught.value.status, caught.value.message) == (
        422,
        "GenericInferenceToolkitError: rows must be sorted",
    )


def test_pre_model_and_warmup_hooks_run_around_model_fn(tmp_path: Path) -> None:
    code = """
        order = []

        def pre_model_fn(model_dir):
            order.append("pre")

        def model_fn(model_dir):
            order.append("model")
            return lambda data: order

        def model_warmup_fn(model_dir, model):
            order.append("warmup")
    """
    directory = builders.model_dir(tmp_path / "m", {"code/inference.py": code})
    runtime = load_runtime(directory, "python", {}, False)
    body = runtime.invoke(b"[0]", "application/json", "application/json", None).body
    assert json.loads(body) == ["pre", "model", "warmup"]
