"""What a framework runtime provides: its default `model_fn` and `predict_fn`, the ones the
SageMaker framework containers put under a user's inference.py. Everything else (decoding,
encoding, the user's overrides) is shared and lives in `tideserve.serving.handler`.

Shared choices for the tabular runtimes (scikit-learn, XGBoost, ONNX):

- A 1-D request array is one row.
- Which estimator method answers. The default is `predict` (class labels for a classifier).
  The model's Environment sets another with `TIDESERVE_PREDICT_METHOD` (predict,
  predict_proba, predict_log_proba, decision_function), and one request can ask for another
  with the custom attribute `predict_method=<name>` in `X-Amzn-SageMaker-Custom-Attributes`
  (attributes are `key=value` pairs separated by `,` or `;`). A per-request choice keeps one
  deployed model able to answer both "which class" and "how sure".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
PREDICT_METHOD_ENV = "TIDESERVE_PREDICT_METHOD"


class RequestContext(Protocol):
    custom_attributes: str | None


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model. `threads` caps the framework's own thread pool (None: its default);
    `trust_pickle` allows joblib/pickle files, whose loading runs code from the archive."""

    env: Mapping[str, str] = field(default_factory=dict)
    trust_pickle: bool = False
    threads: int | None = None


@dataclass(frozen=True)
class Framework:
    name: str
    model_fn: Callable[[str], Any]
    predict_fn: Callable[[Any, Any, RequestContext], Any]
    # How a decoded request reads as rows that can be joined with other requests' rows into
    # one predict (serving/batching.py): a 2-D array, or None for a request that must run
    # alone. None here: this framework's predict does not take a batch.
    batch_rows: Callable[[Any], np.ndarray | None] | None = None


def find_model_file(model_dir: str | Path, suffixes: tuple[str, ...], runtime: str) -> Path:
    """The one model file in `model_dir` (top level) ending in one of `suffixes`, preferring
    files named `model.*`; ValidationError when there is none or the choice is ambiguous."""
    root = Path(model_dir)
    found = sorted(p for p in root.iterdir() if p.is_file() and p.name.lower().endswith(suffixes))
    if len(found) > 1:
        named = [p for p in found if p.name.lower().startswith("model.")]
        found = named if len(named) == 1 else found
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValidationError(
            f"The {runtime} runtime found no model file ({', '.join(suffixes)}) in {root}; "
            f"it holds {sorted(p.name for p in root.iterdir())[:10]}."
        )
    raise ValidationError(
        f"The {runtime} runtime found several model files in {root}: "
        f"{[p.name for p in found]}; keep one, or name it model.<ext>."
    )


def as_rows(data: Any) -> np.ndarray:
    """A 2-D array of rows for a tabular model."""
    rows = np.asarray(data)
    if rows.ndim == 1:
        return rows.reshape(1, -1)
    if rows.ndim != 2:
        raise InvokeError(400, f"A tabular model takes rows (a 2-D array); got shape {rows.shape}.")
    return rows


def tabular_rows(data: Any) -> np.ndarray | None:
    """A tabular request as rows to join: a 1-D array is one row (as in as_rows)."""
    if not isinstance(data, np.ndarray) or data.ndim not in (1, 2) or data.size == 0:
        return None
    return data.reshape(1, -1) if data.ndim == 1 else data


def leading_axis_rows(data: Any) -> np.ndarray | None:
    """A request whose first axis is its rows: only arrays of two or more dimensions (a 1-D
    array may be one sample, not a batch of scalars, so it runs alone)."""
    if not isinstance(data, np.ndarray) or data.ndim < 2 or data.shape[0] == 0:
        return None
    return data


def default_predict_method(env: Mapping[str, str]) -> str:
    method = env.get(PREDICT_METHOD_ENV, "predict")
    if method not in PREDICT_METHODS:
        raise ValidationError(
            f"{PREDICT_METHOD_ENV}={method!r} is not one of {', '.join(PREDICT_METHODS)}."
        )
    return method


def predict_method(
    context: RequestContext, default: str, allowed: tuple[str, ...] = PREDICT_METHODS
) -> str:
    """The method a request asks for in its custom attributes, else `default`."""
    attributes = context.custom_attributes
    if not attributes or "predict_method" not in attributes:
        return default
    for pair in attributes.replace(";", ",").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "predict_method":
            method = value.strip()
            if method not in allowed:
                raise InvokeError(
                    400,
                    f"Custom attribute predict_method={method!r} is not one of "
                    f"{', '.join(allowed)}.",
                )
            return method
    return default
