"""Kill the server, start it again: every InService endpoint comes back with its instances."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import csv_rows, pack_skops, start_server, stop_server, train_breast_cancer

pytestmark = pytest.mark.integration


def test_endpoints_survive_a_server_kill(tmp_path):
    model, X = train_breast_cancer("logistic")
    archive = pack_skops(model, tmp_path / "model")
    state = tmp_path / "state"
    server = start_server(state)
    try:
        sm = server.client("sagemaker")
        deploy(sm, "durable", str(archive), count=2)
        wait_in_service(sm, "durable")
    finally:
        stop_server(server, sig=signal.SIGKILL)

    again = start_server(state)  # returns at the first 200 from /healthz
    try:
        sm, rt = again.client("sagemaker"), again.client("sagemaker-runtime")
        # Ready means ready: no waiting, the restored endpoint serves at once.
        resp = rt.invoke_endpoint(EndpointName="durable", Body=csv_rows(X[:1]),
                                  ContentType="text/csv")
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        desc = sm.describe_endpoint(EndpointName="durable")
        assert desc["EndpointStatus"] == "InService"
        variant = desc["ProductionVariants"][0]
        assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
        resp = rt.invoke_endpoint(EndpointName="durable", Body=csv_rows(X[:4]),
                                  ContentType="text/csv")
        np.testing.assert_array_equal(
            np.asarray(json.loads(resp["Body"].read())).ravel(), model.predict(X[:4])
        )
    finally:
        stop_server(again)
