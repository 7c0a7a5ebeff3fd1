"""What a simulation returns: per run (a policy set, or the clairvoyant baseline) its figures
and its per-step log; `simulate(scenario) -> SimResult` gathers them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tideserve.scaling.model import Activity
from tideserve.sim.fluid import StepLog
from tideserve.sim.scenario import Scenario


@dataclass(frozen=True)
class Summary:
    """One run's figures. Costs in USD, times in seconds, counts in requests."""

    cost_usd: float
    instance_hours: float  # billed instance-seconds / 3600
    mean_instances: float  # time-weighted billed instances
    mean_in_service: float  # time-weighted instances serving
    requests: float
    served: float
    dropped: float  # timed out waiting (counted over the SLO too)
    over_slo_share: float  # requests over the SLO latency / requests
    latency_p50: float  # of served requests
    latency_p90: float
    latency_p99: float


@dataclass(frozen=True)
class ServerlessFigures:
    """What only a serverless run has. Counts in requests (fluid: fractional)."""

    cold_starts: float  # requests that started a new worker (each waited ModelSetupTime)
    throttled: float  # requests refused beyond MaxConcurrency (failed; over the SLO too)
    gb_seconds: float  # memory (GB) × request duration (s) billed
    provisioned_usd: float  # the always-on charge of provisioned concurrency
    mean_workers: float  # time-weighted workers alive (warm or busy)
    peak_workers: int


@dataclass(frozen=True)
class AsyncFigures:
    """What only an async run has."""

    max_queue_age_seconds: float  # longest a request waited in the queue
    expired: float  # requests older than RequestTTL before dispatch (never served)
    drain_seconds: float  # simulated past the trace's end until the queue was empty
    peak_instances: int
    seconds_at_zero: float  # seconds with no instance billed
    final_instances: int  # in service when the run ended


@dataclass
class PolicyRun:
    name: str
    summary: Summary
    log: StepLog  # per step: arrivals, instances (serverless: workers), waits, ...
    activities: list[Activity] = field(default_factory=list)  # scaling activities, oldest first
    not_scaled: int = 0  # decision records that did not scale (IncludeNotScaledActivities)
    kind: str = "realtime"  # realtime | serverless | async (sim.kinds)
    figures: ServerlessFigures | AsyncFigures | None = None
    usd: np.ndarray | None = None  # USD per step when not instances × hourly price

    @property
    def scaling_activities(self) -> int:
        return len(self.activities)


@dataclass
class SimResult:
    scenario: Scenario
    runs: list[PolicyRun]
    baseline: PolicyRun
    wall_seconds: float = 0.0
