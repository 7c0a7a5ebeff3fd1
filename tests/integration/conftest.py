"""A real `tideserve up` (metric period 2 s) shared by the integration tests of a session, and
real models trained on scikit-learn's breast-cancer data."""

from __future__ import annotations

import pytest

from tests.support import pack_skops, start_server, stop_server, train_breast_cancer

CRASHING_HANDLER = '''
import numpy as np

def predict_fn(data, model):
    if float(data[0][0]) < 0:
        raise RuntimeError("negative radius is not a tumour")
    return model.predict(data)
'''


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    model, X = train_breast_cancer("logistic")
    root = tmp_path_factory.mktemp("model")
    archive = pack_skops(model, root / "plain")
    crashing = pack_skops(model, root / "crashing", {"code/inference.py": CRASHING_HANDLER})
    return model, X, archive, crashing


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("state") / "state", period=2.0)
    try:
        yield srv
    finally:
        stop_server(srv)


