"""The fluid model and the request-level simulation agree, on the checked-in 30-minute Azure
segment at three times its rate (bursts of up to 200 requests in a second), where it matters
for a policy: the decisions and capacity over time, instance-seconds, the SLO share.

Tolerances: the scaling decisions are identical (InvocationsPerInstance counts the same
arrivals in both); the SLO share within 3 percentage points and the median latency within
15 % (the fluid model leaves out queueing below saturation, which the request-level mode has).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.sim.builders import DATA
from tideserve.sim.run import simulate
from tideserve.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def both():
    scn = load_scenario(DATA / "golden_azure_code.yaml")
    fluid = simulate(scn)
    requests = simulate(replace(scn, options=replace(scn.options, mode="requests", seed=7)))
    return fluid, requests


def test_same_decisions_and_capacity_over_time(both) -> None:
    fluid, requests = both
    for f, r in zip(fluid.runs, requests.runs, strict=True):
        assert [(a.start_time, a.desired) for a in f.activities] == [
            (a.start_time, a.desired) for a in r.activities], f.name
        assert np.array_equal(f.log.in_service, r.log.in_service)
        assert f.summary.instance_hours == pytest.approx(r.summary.instance_hours)


def test_slo_share_and_latency_agree_within_tolerance(both) -> None:
    fluid, requests = both
    for f, r in zip(fluid.runs, requests.runs, strict=True):
        print(f"{f.name}: over-SLO fluid {f.summary.over_slo_share:.4f} requests "
              f"{r.summary.over_slo_share:.4f}; p50 {f.summary.latency_p50:.3f} "
              f"{r.summary.latency_p50:.3f}; p99 {f.summary.latency_p99:.3f} "
              f"{r.summary.latency_p99:.3f}")
        assert f.summary.over_slo_share == pytest.approx(r.summary.over_slo_share, abs=0.03)
        assert f.summary.latency_p50 == pytest.approx(r.summary.latency_p50, rel=0.15)
        assert f.summary.requests == r.summary.requests  # integer counts: the same arrivals
