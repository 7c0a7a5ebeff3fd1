"""tideserve's own policies in a scenario (beyond AWS): a latency target and a burst mode,
decided by the pure engine (scaling.latency_target, scaling.burst) and run on simulated time.

They are not PutScalingPolicy shapes: AWS's TargetTrackingScaling with a
CustomizedMetricSpecification would accept a tideserve metric name, but its alarm semantics
(scale by C × M / T after three breaching minutes, 15 for scale-in) are exactly what a latency
target must not do, and a panic window has no field at all. So a policy set names them in the
scenario YAML, beside (instead of) the AAS calls:

      - name: latency-p99
        register_scalable_target: {MinCapacity: 1, MaxCapacity: 32}
        tideserve_policy:
          latency_target: {latency_seconds: 8, percentile: 99,   # default: the scenario's slo
                           max_utilization: 0.9, scale_in_window: 600}
          burst: {window_seconds: 6, threshold: 2, stable_window: 60, utilization: 1.0}

`burst` may be left out (no burst mode). The measured inputs come from the profile (the
service time, as `profile.measure` reads it from a live endpoint) and the run's own log
(arrivals per period and per short window, the share over the latency target).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tideserve.scaling.latency_policy import PolicyState, evaluate
from tideserve.scaling.latency_target import ServiceMeasure
from tideserve.scaling.model import Activity, TargetKey
from tideserve.scaling.ports import IN_SERVICE
from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.extension_spec import TideservePolicy
from tideserve.sim.fluid import FluidModel
from tideserve.sim.loop import EndpointLoop
from tideserve.sim.requests import RequestModel
from tideserve.sim.result import PolicyRun
from tideserve.sim.scenario import Scenario


class ExtensionLoop(EndpointLoop):
    """The endpoint loop with tideserve's policy deciding instead of the AAS tick: the
    latency target at every metric period's close, the burst mode every half short window
    (at least every step)."""

    def __init__(self, *args: Any, policy: TideservePolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.period = self.scenario.options.metric_period
        self.every = self.period if policy.burst is None else max(
            self.dt, min(self.period, policy.burst.window_seconds / 2))
        self.state = PolicyState()
        self.changes: list[Activity] = []
        self.key = TargetKey("sagemaker", self.scenario.endpoint.resource_id,
                             "sagemaker:variant:DesiredInstanceCount")
        profile = self.scenario.profile
        tail = 1.0 - policy.latency_target.tail_share / 2.0
        self.service_mean = profile.service_time.mean
        self.service_tail = profile.service_time.quantile(tail)

    def _tick(self, now: float) -> None:
        ep, cfg = self.endpoint, self.policy.latency_target
        current = ep.desired
        per = int(round(self.period / self.dt))
        on_period = abs((now - self.t0) / self.period - round((now - self.t0) / self.period)) \
            < 1e-9 and self.step >= per
        last = slice(max(0, self.step - per), self.step)
        arrived = float(self.log.arrivals[last].sum())
        over = float(self.log.over[last].sum()) / arrived if arrived > 0 else None
        span = max(1, self.step - last.start) * self.dt
        measure = ServiceMeasure(arrived / span, self.service_mean, self.service_tail,
                                 self.scenario.profile.concurrency, over)
        rate = 0.0
        if self.policy.burst is not None:
            window = max(1, int(round(self.policy.burst.window_seconds / self.dt)))
            recent = self.log.arrivals[max(0, self.step - window):self.step]
            rate = float(recent.sum()) / (max(1, len(recent)) * self.dt)
        # The same composition the live driver runs (scaling.latency_policy).
        d = evaluate(cfg, self.policy.burst, self.state, measure, on_period, rate, current, now)
        self.state, desired, reason = d.state, d.desired, d.reason
        if desired != current and ep.status == IN_SERVICE:
            ep.set_desired_capacity(ep.resource_id, desired, now)
            self.changes.append(Activity(f"tideserve-{len(self.changes) + 1}", self.key,
                                         f"Setting desired instance count to {desired}.",
                                         reason, now, "Successful", desired, now))

    def _next_event(self, now: float) -> float:
        k = math.floor((now - self.t0) / self.every + 1e-9) + 1
        candidates = [self.t0 + k * self.every]
        if self.endpoint.ready_at is not None:
            candidates.append(max(self.endpoint.ready_at, now))
        nxt = min(candidates)
        return nxt if nxt > now else math.nextafter(now, math.inf)

    def activities(self) -> tuple[list[Activity], int]:
        return list(self.changes), 0


def run_extension(scenario: Scenario, policy_set: PolicySet,
                  arrivals: np.ndarray) -> PolicyRun:
    """A policy set with `tideserve_policy`: the PolicyRun, as run_policy_set returns."""
    from tideserve.sim.run import summarize  # sim.run dispatches here

    run = ExtensionLoop(scenario, policy_set, arrivals, policy=policy_set.extension)
    run.run()
    assert isinstance(run.model, (FluidModel, RequestModel))
    return PolicyRun(policy_set.name, summarize(scenario, run.log, run.model), run.log,
                     run.changes, 0)
