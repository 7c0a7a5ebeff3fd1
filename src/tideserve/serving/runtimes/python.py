"""Plain Python: the model is whatever code/inference.py's `model_fn` returns.

With no framework underneath there is no default model_fn. The default predict_fn calls the
model's `predict(data)` when it has one, else calls the model itself.
"""

from __future__ import annotations

from typing import Any

from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.runtimes.base import Framework, LoadOptions, RequestContext


def framework(options: LoadOptions) -> Framework:
    def model_fn(model_dir: str) -> Any:
        raise ValidationError(
            "The python runtime needs code/inference.py (or the module SAGEMAKER_PROGRAM names) "
            f"in {model_dir} defining model_fn(model_dir)."
        )

    def predict_fn(data: Any, model: Any, context: RequestContext) -> Any:
        if hasattr(model, "predict"):
            return model.predict(data)
        if callable(model):
            return model(data)
        raise InvokeError(
            500,
            f"model_fn returned a {type(model).__name__}, which has no predict() and is not "
            "callable; define predict_fn in inference.py.",
        )

    return Framework("python", model_fn, predict_fn)
