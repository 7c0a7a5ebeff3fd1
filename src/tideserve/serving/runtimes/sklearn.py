"""scikit-learn: skops files always; joblib/pickle files only with trust_pickle.

skops loads only types it trusts (scikit-learn, numpy and scipy types by default). A model
holding other types names them in its error; list them in the model's Environment as
`TIDESERVE_SKOPS_TRUSTED=module.Type,module.Other` to trust exactly those, or run with
trust_pickle, which trusts everything (as unpickling would).

scikit-learn and skops are imported with pandas and the array libraries hidden
(runtimes/lean.py): an instance of a LogisticRegression then holds ~125 MB instead of ~400.
The model itself is loaded with nothing hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tideserve.errors import ValidationError
from tideserve.serving.codecs import InvokeError
from tideserve.serving.runtimes.base import (
    Framework,
    LoadOptions,
    RequestContext,
    as_rows,
    default_predict_method,
    find_model_file,
    predict_method,
    tabular_rows,
)
from tideserve.serving.runtimes.lean import ARRAY_LIBRARIES, hidden

SKOPS = (".skops",)
PICKLES = (".joblib", ".pkl", ".pickle")
SKOPS_TRUSTED_ENV = "TIDESERVE_SKOPS_TRUSTED"
# sklearn.utils.fixes tries pandas at import for an ARFF helper only; skops's estimator walk
# reaches sklearn/externals/array_api_compat/torch, which imports torch, sklearn.utils._testing
# (pytest markers) and sklearn.callback (rich progress bars), none of which serve a model.
NOT_NEEDED = ("pandas", *ARRAY_LIBRARIES, "pytest", "_pytest", "rich")


def import_framework(with_skops: bool = True) -> None:
    """Import what model_fn needs before any model is known (also a warm spare's work)."""
    with hidden(*NOT_NEEDED):
        import sklearn  # noqa: F401

        if with_skops:
            import skops.io  # noqa: F401


def framework(options: LoadOptions) -> Framework:
    default_method = default_predict_method(options.env)

    def model_fn(model_dir: str) -> Any:
        path = find_model_file(model_dir, SKOPS + PICKLES, "sklearn")
        import_framework(with_skops=path.name.lower().endswith(SKOPS))
        if path.name.lower().endswith(SKOPS):
            return _load_skops(path, options)
        return load_pickle(path, options.trust_pickle)

    def predict_fn(data: Any, model: Any, context: RequestContext) -> Any:
        method = predict_method(context, default_method)
        call = getattr(model, method, None)
        if call is None:
            raise InvokeError(400, f"This model has no {method}(); it is a {type(model).__name__}.")
        return call(as_rows(data))

    return Framework("sklearn", model_fn, predict_fn, tabular_rows)


def _load_skops(path: Path, options: LoadOptions) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    allowed = {t.strip() for t in options.env.get(SKOPS_TRUSTED_ENV, "").split(",") if t.strip()}
    refused = [t for t in untrusted if t not in allowed]
    if refused and not options.trust_pickle:
        raise ValidationError(
            f"{path.name} holds types skops does not trust by default: {refused}. "
            f"Trust them by listing them in the model's Environment as {SKOPS_TRUSTED_ENV}, "
            "or run with trust_pickle."
        )
    return skops.io.load(path, trusted=untrusted or None)


def load_pickle(path: Path, trust_pickle: bool) -> Any:
    """Unpickling runs whatever code the file names, so it needs an explicit opt-in."""
    if not trust_pickle:
        raise ValidationError(
            f"{path.name} is a pickle/joblib file and loading one runs code from the model "
            "archive; save the model with skops (.skops) instead, or opt in with trust_pickle "
            "(--trust-pickle) for models from a trusted source."
        )
    import joblib

    return joblib.load(path)
