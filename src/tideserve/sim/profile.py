"""An instance type's serving profile: how long a request takes, how many an instance serves
at once, how long a new instance takes to serve — given in a scenario, or measured from a live
endpoint's CloudWatch metrics (`measure_profile`).

The service time is held as its quantile function on a fixed grid of probabilities, whatever
form it was given in, so the fluid model (its CDF), the request-level mode (sampling by
inverse transform) and the clairvoyant baseline all read one table.

From percentiles: log service time is taken to be piecewise linear in the normal score of the
probability (a lognormal between each pair of given percentiles), extended beyond the outer
ones with the slope of the nearest pair. Worked example: p50 = 0.2 s and p99 = 0.8 s give
σ = ln(4) / 2.326 = 0.596 — a lognormal with median 0.2 s and mean 0.2·e^{σ²/2} = 0.239 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from tideserve.errors import ValidationError

GRID = np.linspace(0.0005, 0.9995, 1000)  # probabilities at which the quantiles are tabled
_Z = np.array([NormalDist().inv_cdf(float(u)) for u in GRID])
US_PER_SECOND = 1e6


@dataclass(frozen=True, eq=False)
class ServiceTime:
    """Seconds one request occupies a concurrency slot; `quantiles[i]` is the GRID[i]
    quantile (non-decreasing)."""

    quantiles: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.quantiles.mean())

    def quantile(self, p: float) -> float:
        return float(np.interp(p, GRID, self.quantiles))

    def cdf(self, seconds: np.ndarray | float) -> np.ndarray:
        """P(service time ≤ seconds), elementwise."""
        return np.asarray(np.interp(seconds, self.quantiles, GRID, left=0.0, right=1.0))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(np.interp(rng.random(n), GRID, self.quantiles))

    @classmethod
    def constant(cls, seconds: float) -> ServiceTime:
        return cls(np.full(len(GRID), float(seconds)))

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> ServiceTime:
        return cls(median * np.exp(sigma * _Z))

    @classmethod
    def from_percentiles(cls, percentiles: Mapping[float, float]) -> ServiceTime:
        """{50: 0.2, 90: 0.5, 99: 0.8} (percent → seconds), at least two of them."""
        points = sorted((float(p), float(s)) for p, s in percentiles.items())
        if len(points) < 2:
            raise ValidationError("profile.service_time needs at least two percentiles "
                                  "(e.g. p50 and p99), or 'constant', or 'lognormal'")
        for p, s in points:
            if not 0 < p < 100 or s <= 0:
                raise ValidationError(f"profile.service_time: p{p:g} = {s} is not a positive "
                                      "time at a percentile between 0 and 100")
        z = np.array([NormalDist().inv_cdf(p / 100) for p, _ in points])
        logs = np.log([s for _, s in points])
        if (np.diff(logs) < 0).any():
            raise ValidationError("profile.service_time: percentiles must not decrease")
        inner = np.interp(_Z, z, logs)
        low_slope = (logs[1] - logs[0]) / (z[1] - z[0])
        high_slope = (logs[-1] - logs[-2]) / (z[-1] - z[-2])
        out = np.where(_Z < z[0], logs[0] + (_Z - z[0]) * low_slope, inner)
        out = np.where(_Z > z[-1], logs[-1] + (_Z - z[-1]) * high_slope, out)
        return cls(np.exp(out))


@dataclass(frozen=True)
class Profile:
    instance_type: str
    service_time: ServiceTime
    concurrency: int  # requests one instance serves at once
    startup_seconds: float  # from the capacity decision until a new instance serves
    shutdown_seconds: float = 0.0  # from a scale-in decision until the instances are gone
    timeout_seconds: float = 60.0  # a request waiting longer fails (InvokeEndpoint's 60 s)
    cpu_seconds_per_request: float | None = None  # drives CPUUtilization when given
    vcpu: int = 1
    overhead_seconds: float = 0.0  # the router's OverheadLatency per request
    memory_percent: float | None = None  # an instance's MemoryUtilization while it serves

    @property
    def rate_per_instance(self) -> float:
        """Requests per second one fully busy instance completes (MAX_RPS of a load test)."""
        return self.concurrency / self.service_time.mean


def service_time_from(raw: Any) -> ServiceTime:
    """The `profile.service_time` mapping of a scenario: {constant: s} | {lognormal:
    {median, sigma}} | {p50: s, p90: s, p99: s, ...} (seconds)."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValidationError("profile.service_time must be a mapping, e.g. {p50: 0.2, p99: 0.8}")
    if "constant" in raw:
        return ServiceTime.constant(_positive(raw["constant"], "profile.service_time.constant"))
    if "lognormal" in raw:
        spec = raw["lognormal"]
        return ServiceTime.lognormal(_positive(spec.get("median"), "lognormal.median"),
                                     _positive(spec.get("sigma"), "lognormal.sigma"))
    percentiles: dict[float, float] = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.startswith("p")):
            raise ValidationError(f"profile.service_time: unknown key {key!r} (expected "
                                  "constant, lognormal or percentiles such as p50, p99)")
        try:
            percentiles[float(key[1:])] = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"profile.service_time.{key}: {value!r} is not a number "
                                  "of seconds") from None
    return ServiceTime.from_percentiles(percentiles)


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValidationError(f"Value {value!r} at '{field}' failed to satisfy constraint: "
                              "Member must be a positive number")
    return float(value)


def measure_profile(
    cloudwatch: Any, endpoint: str, variant: str, start: Any, end: Any, *,
    instance_type: str, concurrency: int, startup_seconds: float | None = None, vcpu: int = 1,
) -> Profile:
    """A profile from a live endpoint's metrics, read with a boto3 `cloudwatch` client (AWS
    or tideserve): ModelLatency p50/p90/p99 over [start, end) as the service time, and the
    longest InstanceStartupTime tideserve published as the start-up delay unless given.
    ModelLatency includes time queued in the container, so measure at a load below
    saturation. Concurrency cannot be read from metrics: it is the variant's setting."""
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    span = max(60, int(math.ceil((end - start).total_seconds() / 60.0)) * 60)
    out = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=dims,
        StartTime=start, EndTime=end, Period=span, ExtendedStatistics=["p50", "p90", "p99"])
    points = out.get("Datapoints") or []
    if not points:
        raise ValidationError(f"No ModelLatency for endpoint {endpoint} variant {variant} in "
                              "the window: invoke it before measuring its profile")
    stats = points[0]["ExtendedStatistics"]
    percentiles = {float(k[1:]): v / US_PER_SECOND for k, v in stats.items()}
    if startup_seconds is None:
        startup = cloudwatch.get_metric_statistics(
            Namespace="tideserve", MetricName="InstanceStartupTime", Dimensions=dims,
            StartTime=start, EndTime=end, Period=span, Statistics=["Maximum"])
        values = [p["Maximum"] for p in startup.get("Datapoints") or []]
        startup_seconds = max(values) if values else 0.0
    return Profile(instance_type, ServiceTime.from_percentiles(percentiles), concurrency,
                   float(startup_seconds), vcpu=vcpu)
