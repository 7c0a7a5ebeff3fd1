"""Importing a framework without the optional integrations it would drag in.

Frameworks import other frameworks they could work with, whether or not a model uses them,
and an instance pays for each in memory and start-up time. Measured (numbers from one
machine, RSS after import): `import sklearn` 141 MB, 30 MB of it pandas (sklearn.utils.fixes
tries `import pandas` for one ARFF helper); `import skops.io` 362 MB, because skops lists
every scikit-learn estimator at import (sklearn.utils.all_estimators), which walks every
scikit-learn package including the array-API adapters under sklearn.externals, and the torch
adapter imports torch; `import xgboost` 169 MB, because xgboost.compat imports scikit-learn
(and with it pandas) for its scikit-learn API.

`hidden(...)` makes the named packages unimportable for the duration of a `with` block: an
`import` of one raises ModuleNotFoundError, which these libraries catch as "not installed".
Nothing is hidden afterwards, so a model that needs pandas (a pickled pipeline holding a
pandas function) imports it when it loads, and a user's inference.py imports whatever it
wants; a package that is already imported is unaffected. Each runtime names what it hides
and why (runtimes/sklearn.py, runtimes/xgboost.py).
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

# Array libraries scikit-learn's bundled array-API adapters import when a package walk
# reaches them (sklearn/externals/array_api_compat/<name>).
ARRAY_LIBRARIES = ("torch", "cupy", "dask", "jax", "tensorflow")


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, packages: frozenset[str]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while a "
                                      "framework imports)", name=fullname)
        return None


@contextmanager
def hidden(*packages: str) -> Iterator[None]:
    finder = _Hide(frozenset(p for p in packages if p not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        try:
            sys.meta_path.remove(finder)
        except ValueError:  # someone rebuilt sys.meta_path meanwhile
            pass
