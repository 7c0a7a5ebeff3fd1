"""XGBoost: native model files loaded into an `xgboost.Booster`.

Files: `.json`, `.ubj`, `.model`, `.bst`, or `xgboost-model` (the name SageMaker's XGBoost
algorithm writes). A pickled Booster or scikit-learn-API model (`.pkl`, `.joblib`, or a
pickled `xgboost-model`) loads only with trust_pickle.

The answer is the booster's own output, as in SageMaker's XGBoost container: probabilities for
`binary:logistic` and `multi:softprob`, class indices for `multi:softmax`, values for
regression. `predict_method=predict_margin` in the custom attributes asks for raw margins.

For a native model file xgboost is imported with scikit-learn and pandas hidden
(runtimes/lean.py): xgboost.compat imports scikit-learn for its scikit-learn API, which a
Booster never uses (~75 MB per instance instead of ~175). A pickled model is a scikit-learn-API
estimator whose classes need scikit-learn, so it is imported with nothing hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tideserve.errors import ValidationError
from tideserve.serving.runtimes.base import (
    Framework,
    LoadOptions,
    RequestContext,
    as_rows,
    find_model_file,
    predict_method,
    tabular_rows,
)
from tideserve.serving.runtimes.lean import hidden
from tideserve.serving.runtimes.sklearn import PICKLES, load_pickle

_METHODS = ("predict", "predict_margin")
NATIVE = (".json", ".ubj", ".model", ".bst", "xgboost-model")


def import_framework(native: bool = True) -> None:
    """Import xgboost as model_fn does for a native (`native`) or pickled model file."""
    with hidden(*(("sklearn", "pandas") if native else ())):
        import xgboost  # noqa: F401


def framework(options: LoadOptions) -> Framework:
    def model_fn(model_dir: str) -> Any:
        return _load(find_model_file(model_dir, NATIVE + PICKLES, "xgboost"), options)

    def predict_fn(data: Any, model: Any, context: RequestContext) -> Any:
        margin = predict_method(context, "predict", _METHODS) == "predict_margin"
        # inplace_predict skips building a DMatrix: the cheaper path for small requests.
        return model.inplace_predict(as_rows(data), predict_type="margin" if margin else "value")

    return Framework("xgboost", model_fn, predict_fn, tabular_rows)


def _load(path: Path, options: LoadOptions) -> Any:
    import_framework(native=not path.name.lower().endswith(PICKLES))
    import xgboost

    if path.name.lower().endswith(PICKLES):
        return _booster_of(load_pickle(path, options.trust_pickle), path)
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        if path.name != "xgboost-model" or not options.trust_pickle:
            raise ValidationError(
                f"{path.name} is not an XGBoost model file: {str(exc).splitlines()[0]}"
            ) from None
        return _booster_of(load_pickle(path, options.trust_pickle), path)
    if options.threads:
        booster.set_param({"nthread": options.threads})
    return booster


def _booster_of(obj: Any, path: Path) -> Any:
    import xgboost

    if isinstance(obj, xgboost.Booster):
        return obj
    if hasattr(obj, "get_booster"):
        return obj.get_booster()
    raise ValidationError(f"{path.name} does not hold an XGBoost model; it holds {type(obj)}.")
