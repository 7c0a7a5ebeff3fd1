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




@pytest.fixture(autouse=True)
def delete_endpoints_afterwards(request):
    """Each test makes its own endpoints on the shared server; deleting them when it ends keeps
    the instance processes (and their memory) from piling up over the session."""
    yield
    if "server" not in request.fixturenames:
        return
    srv = request.getfixturevalue("server")
    if srv.proc.poll() is not None:
        return
    sm = srv.client("sagemaker")
    for page in sm.get_paginator("list_endpoints").paginate():
        for endpoint in page["Endpoints"]:
            if endpoint["EndpointStatus"] in ("InService", "Failed"):
                try:
                    sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
                except sm.exceptions.ClientError:
                    pass  # it changed state meanwhile; the server cleans up at exit
