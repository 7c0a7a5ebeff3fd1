"""Predictive scaling in the simulator: the load history its forecasts read, and the split of
a trace into a history prefix and the part that is evaluated.

The forecasts are made by the live driver's `scaling.forecast.Forecaster` with the same model
(forecasting.holt_winters), refreshed every (compressed) hour of simulated time, so a policy
rehearsed here acts on forecasts made as live. Their history is the variant's Invocations
(Sum per metric period) — the load metric of the predefined SageMaker types — read from the
trace: the prefix (`simulation.history_seconds`, never evaluated) and then the part simulated
so far, never a bin that has not closed. A customized load metric has no data in the
simulator, so such a policy falls back to its reactive partners, as live without history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from tideserve.errors import ValidationError
from tideserve.scaling.predictive_model import MetricStatQuery
from tideserve.sim.scenario import Scenario

LOAD_NAMESPACE, LOAD_METRIC = "AWS/SageMaker", "Invocations"


class TraceLoad:
    """The variant's arrivals per step from `start` on: the history prefix followed by the
    simulated part, both counted as Invocations."""

    def __init__(self, arrivals: np.ndarray, start: float, dt: float, endpoint: str,
                 variant: str) -> None:
        self.counts = np.cumsum(np.concatenate([[0.0], np.asarray(arrivals, dtype=float)]))
        self.start, self.dt = start, dt
        self.dims = (("EndpointName", endpoint), ("VariantName", variant))

    def read(self, q: MetricStatQuery, start: float, end: float,
             step: float) -> Mapping[float, float]:
        """{bin start: Sum of arrivals} for the bins of `step` inside [start, end) that have
        closed by `end` and lie in the trace."""
        if (q.namespace, q.metric_name) != (LOAD_NAMESPACE, LOAD_METRIC) or q.stat != "Sum":
            return {}
        if tuple(sorted(q.dimensions)) != tuple(sorted(self.dims)):
            return {}
        first = max(math.ceil((start - self.start) / step - 1e-9), 0)
        known = min(end, self.start + (len(self.counts) - 1) * self.dt)
        last = math.floor((known - self.start) / step + 1e-9)  # bins [first, last) closed
        if last <= first:
            return {}
        per = step / self.dt
        edges = np.rint(np.arange(first, last + 1) * per).astype(int)
        sums = self.counts[edges[1:]] - self.counts[edges[:-1]]
        starts = self.start + np.arange(first, last) * step
        return dict(zip(starts.tolist(), sums.tolist(), strict=True))


def split_history(scenario: Scenario, arrivals: np.ndarray) -> tuple[Scenario, np.ndarray,
                                                                      np.ndarray]:
    """(the scenario of the evaluated part, the history prefix's arrivals, the evaluated
    part's arrivals): the evaluated part starts `history_seconds` into the trace, at that
    time of day."""
    opts = scenario.options
    if opts.history_seconds <= 0:
        return scenario, arrivals[:0], arrivals
    k = round(opts.history_seconds / opts.step_seconds)
    if k >= len(arrivals):
        raise ValidationError(f"simulation.history_seconds ({opts.history_seconds}) leaves "
                              "nothing of the trace to evaluate")
    rest = replace(opts, start_time=opts.start_time + k * opts.step_seconds, history_seconds=0.0)
    return replace(scenario, options=rest), arrivals[:k], arrivals[k:]
