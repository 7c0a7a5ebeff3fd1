"""The metric catalogue is the one list of who publishes what: the simulator serves an alarm
exactly the series a live variant of the same kind publishes, with the same unit and
zero-filling (the live half is asserted in tests/integration/test_realtime_endpoints.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.metrics import catalogue as c
from tideserve.metrics.names import STANDARD_UNITS
from tideserve.sim.async_run import ASYNC_SERIES, NOT_PUBLISHED
from tideserve.sim.fluid import StepLog
from tideserve.sim.metrics import SERIES, SimMetrics
from tideserve.sim.profile import Profile, ServiceTime
from tideserve.sim.serverless_loop import SERVERLESS_SERIES

T0 = 1_704_067_200.0


def alarm_on(metric: c.Metric, unit: str | None = None):
    dims = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "v"}]
    params = {"AlarmName": "a", "Namespace": metric.namespace, "MetricName": metric.name,
              "Period": 60, "EvaluationPeriods": 1, "Threshold": 1, "Statistic": "Sum",
              "Dimensions": dims[:len(metric.dimensions)],
              "ComparisonOperator": "GreaterThanThreshold"}
    if unit is not None:
        params["Unit"] = unit
    return validate_alarm(params, now=T0)


@pytest.fixture
def sim() -> SimMetrics:
    profile = Profile("ml.m5.large", ServiceTime.constant(0.1), 1, 60.0, memory_percent=30.0)
    return SimMetrics(StepLog.empty(np.ones(60)), T0, 1.0, "ep", "v", profile)


def test_every_entry_is_well_formed() -> None:
    for metric in c.CATALOGUE.values():
        assert metric.unit in STANDARD_UNITS, metric
        assert metric.kinds and metric.kinds <= set(c.KINDS), metric
        assert metric.zero_filled <= metric.kinds, metric


@pytest.mark.parametrize("metric", list(c.CATALOGUE.values()), ids=lambda m: m.name)
def test_the_simulated_real_time_variant_serves_only_what_live_publishes(
        sim: SimMetrics, metric: c.Metric) -> None:
    served = sim.series(alarm_on(metric))
    if metric.key in SERIES:
        assert c.REAL_TIME in metric.kinds
        assert served is not None
        assert served.unit == metric.unit
        assert served.zero_filled == (c.REAL_TIME in metric.zero_filled)
        wrong_unit = "Seconds" if metric.unit != "Seconds" else "Bytes"
        assert sim.series(alarm_on(metric, wrong_unit)) is None
    else:
        assert served is None


def test_the_simulator_models_every_alarmable_real_time_variant_metric() -> None:
    """The real-time metrics it leaves out are instance lifecycle and cost, which a trace
    cannot produce, and the per-container ones of multi-container models, which it does not
    model."""
    left_out = {m.key for m in c.published_by(c.REAL_TIME)} - set(SERIES) - c.MULTI_CONTAINER_ONLY
    assert {ns for ns, _ in left_out} <= c.NOT_FROM_TRAFFIC


def test_the_simulated_serverless_variant_serves_what_live_serverless_publishes() -> None:
    published = {m.key: m for m in c.published_by(c.SERVERLESS)}
    assert set(SERVERLESS_SERIES) <= set(published)
    assert {ns for ns, _ in set(published) - set(SERVERLESS_SERIES)} <= c.NOT_FROM_TRAFFIC
    for key, series in SERVERLESS_SERIES.items():
        assert series.unit == published[key].unit
        assert series.zero_filled == (c.SERVERLESS in published[key].zero_filled)
    assert (c.SAGEMAKER_NAMESPACE, "InvocationsPerInstance") not in SERVERLESS_SERIES


def test_the_simulated_async_variant_serves_only_what_live_async_publishes() -> None:
    visible = {k for k in SERIES if k not in NOT_PUBLISHED} | set(ASYNC_SERIES)
    published = {m.key for m in c.published_by(c.ASYNC)}
    assert visible <= published
    assert (c.SAGEMAKER_NAMESPACE, "Invocations") not in visible
    assert c.BACKLOG_WITHOUT_CAPACITY.key in visible
    for key, series in ASYNC_SERIES.items():
        assert series.unit == c.CATALOGUE[key].unit
