"""What a simulation returns: per run (a policy set, or the clairvoyant baseline) its figures
and its per-step log; `simulate(scenario) -> SimResult` gathers them."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class PolicyRun:
    name: str
    summary: Summary
    log: StepLog  # per step: arrivals, instances, waits, ...
    activities: list[Activity] = field(default_factory=list)  # scaling activities, oldest first
    not_scaled: int = 0  # decision records that did not scale (IncludeNotScaledActivities)

    @property
    def scaling_activities(self) -> int:
        return len(self.activities)


@dataclass
class SimResult:
    scenario: Scenario
    runs: list[PolicyRun]
    baseline: PolicyRun
    wall_seconds: float = 0.0
