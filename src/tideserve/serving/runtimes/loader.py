"""The one entry point that loads a model for serving (re-exported by the instance module):

    runtime = load_runtime(Path("/models/m1"), "sklearn", env={}, trust_pickle=False)
    result = runtime.invoke(b"1,2,3,4", "text/csv", "application/json", None)

Each runtime module provides `framework(options) -> Framework` (its default model_fn and
predict_fn); `tideserve.serving.handler` puts a user's code/inference.py over it. Framework
modules are imported on demand, so serving scikit-learn never imports onnxruntime.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.handler import InvokeResult, Runtime, build
from tideserve.serving.images import RUNTIMES
from tideserve.serving.runtimes.base import LoadOptions

__all__ = ["InvokeError", "InvokeResult", "Runtime", "load_runtime"]


def load_runtime(
    model_dir: Path,
    runtime: str,
    env: Mapping[str, str],
    trust_pickle: bool = False,
    threads: int | None = None,
) -> Runtime:
    """Load the model in `model_dir` with `runtime` (one of images.RUNTIMES). Raises
    ValidationError when the model or its handler code cannot be loaded; whatever a user's
    model_fn raises propagates unchanged."""
    if runtime not in RUNTIMES:
        raise ValidationError(f"Runtime {runtime!r} is not one of {', '.join(RUNTIMES)}.")
    if not Path(model_dir).is_dir():
        raise ValidationError(f"Model directory {model_dir} does not exist.")
    module = importlib.import_module(f"tideserve.serving.runtimes.{runtime}")
    framework = module.framework(
        LoadOptions(env=dict(env), trust_pickle=trust_pickle, threads=threads)
    )
    return build(Path(model_dir), framework, env)


def import_runtime(runtime: str, lean: bool) -> None:
    """Import `runtime`'s framework as its model_fn would, before any model is known (a warm
    spare's work, serving/spare.py). `lean`: the model is a native file with no code/, so
    XGBoost may be imported without its scikit-learn API (runtimes/xgboost.py); otherwise an
    inference.py or a pickled estimator may need it, and nothing is hidden."""
    if runtime not in RUNTIMES:
        raise ValidationError(f"Runtime {runtime!r} is not one of {', '.join(RUNTIMES)}.")
    module = importlib.import_module(f"tideserve.serving.runtimes.{runtime}")
    if runtime == "sklearn":
        module.import_framework(with_skops=True)
    elif runtime == "xgboost":
        module.import_framework(native=lean)
    elif runtime == "onnx":
        importlib.import_module("onnxruntime")
    elif runtime == "pytorch":
        try:
            importlib.import_module("torch")
        except ImportError:  # the instance says so when it loads its model
            pass
