"""Tiny real models, trained on datasets scikit-learn ships, laid out as SageMaker model
directories (what model.tar.gz unpacks to)."""

from __future__ import annotations

import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


@cache
def iris() -> tuple[Any, np.ndarray]:
    """A fitted LogisticRegression on iris (3 classes) and its features."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y), X


@cache
def breast_cancer_xgboost() -> tuple[Any, np.ndarray]:
    import xgboost
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(X, label=y),
        num_boost_round=5,
    )
    return booster, X


def model_dir(root: Path, files: dict[str, str] | None = None) -> Path:
    """An empty model directory with `files` (relative path -> source text) written in."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def sklearn_dir(root: Path, fmt: str = "skops", files: dict[str, str] | None = None) -> Path:
    model, _ = iris()
    directory = model_dir(root, files)
    if fmt == "skops":
        import skops.io

        skops.io.dump(model, directory / "model.skops")
    else:
        import joblib

        joblib.dump(model, directory / f"model.{fmt}")
    return directory


def xgboost_dir(root: Path) -> Path:
    booster, _ = breast_cancer_xgboost()
    directory = model_dir(root)
    booster.save_model(str(directory / "xgboost-model.json"))
    return directory


def onnx_dir(root: Path) -> Path:
    from skl2onnx import to_onnx

    model, X = iris()
    onx = to_onnx(model, X[:1].astype(np.float32), target_opset=17)
    directory = model_dir(root)
    (directory / "model.onnx").write_bytes(onx.SerializeToString())
    return directory


def csv_rows(X: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode()
