"""CloudWatch datapoints from the simulated steps, as the live metric store would hold them
for one variant: per period (aligned to the epoch like CloudWatch's), the statistic an alarm
asks for. Alarms on anything else find no data (INSUFFICIENT_DATA), as they would live.

Per request, as the router and the instance sampler record them live (spec §5.1, §5.3):
- AWS/SageMaker Invocations: 1 per request reaching an instance (none while no instance serves);
  zero-filled in a period without traffic, as SageMaker does.
- InvocationsPerInstance: 1 / (instances in service) per request, so Sum per period =
  invocations per instance; zero-filled too.
- ModelLatency (Microseconds): wait + service time per served request; Average, Sum,
  SampleCount, Minimum/Maximum (mean per step), pNN (the step mixture's percentile).
- Invocation5XXErrors, InvocationModelErrors: requests that timed out waiting.
- Invocation4XXErrors: zero-filled zeros (a trace holds no client errors).
- OverheadLatency (Microseconds): the profile's overhead_seconds per served request.
- ConcurrentRequestsPerModel: requests in service or waiting, per instance, per step.
- /aws/sagemaker/Endpoints CPUUtilization (Percent, summed over cores): busy share × 100 ×
  vCPUs when the profile gives CPU seconds per request, else concurrency slots busy × 100.
- MemoryUtilization (Percent): the profile's memory_percent while instances serve (no data
  when the profile gives none, as for a variant the sampler cannot see).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tideserve.metrics import catalogue as c
from tideserve.scaling.alarms import MetricAlarm, datapoint_query
from tideserve.sim.fluid import StepLog, mixture_percentiles
from tideserve.sim.profile import US_PER_SECOND, Profile

SAGEMAKER, INSTANCES = c.SAGEMAKER_NAMESPACE, c.INSTANCES_NAMESPACE
Aggregate = Callable[[slice, int], np.ndarray]  # (steps, steps per period) -> value per period


@dataclass(frozen=True)
class Series:
    unit: str
    zero_filled: bool


# The real-time variant metrics modelled here, with the catalogue's units and zero-filling
# (the catalogue's others, instance lifecycle counts, have nothing to model on a trace).
MODELLED = (c.INVOCATIONS, c.INVOCATIONS_PER_INSTANCE, c.INVOCATION_4XX_ERRORS,
            c.INVOCATION_5XX_ERRORS, c.INVOCATION_MODEL_ERRORS, c.MODEL_LATENCY,
            c.OVERHEAD_LATENCY, c.CONCURRENT_REQUESTS_PER_MODEL, c.CPU_UTILIZATION,
            c.MEMORY_UTILIZATION)
SERIES = {m.key: Series(m.unit, c.REAL_TIME in m.zero_filled) for m in MODELLED}


class SimMetrics:
    def __init__(self, log: StepLog, t0: float, dt: float, endpoint: str, variant: str,
                 profile: Profile) -> None:
        self.log, self.t0, self.dt, self.profile = log, t0, dt, profile
        self.dims = tuple(sorted((("EndpointName", endpoint), ("VariantName", variant))))
        self.final_steps = 0  # steps whose values will not change
        self._cache: dict[tuple[str, str, float], list[float]] = {}

    def datapoints(self, alarm: MetricAlarm, period: float, now: float) -> dict[float, float]:
        """The Observation.datapoints_for of the tick: {period start: value} over the
        alarm's evaluation range, closed periods only."""
        series = self.series(alarm)
        if series is None:
            return {}
        query = datapoint_query(alarm, period, now)  # the live driver's read, to the letter
        stat = query.statistic
        key = (alarm.metric_name, stat, period)
        values = self._cache.setdefault(key, [])
        per = int(round(period / self.dt))
        closed = min(self.final_steps, int((now - self.t0) / self.dt + 1e-9)) // per
        if closed > len(values):
            steps = slice(len(values) * per, closed * per)
            values.extend(self._aggregate(alarm.metric_name, stat, steps, per,
                                          series.zero_filled).tolist())
        first = max(0, int(np.ceil((query.start - self.t0) / period - 1e-9)))
        out: dict[float, float] = {}
        for i in range(first, len(values)):
            v = values[i]
            if v == v:  # NaN: no datapoint in that period
                out[self.t0 + i * period] = v
        return out

    def series(self, alarm: MetricAlarm) -> Series | None:
        """The series the alarm reads; None (no datapoints) for another metric, dimension
        set or unit."""
        series = SERIES.get((alarm.namespace, alarm.metric_name))
        if series is None or alarm.dimensions != self.dims:
            return None
        if alarm.unit is not None and alarm.unit != series.unit:
            return None
        return series

    def _aggregate(self, name: str, stat: str, steps: slice, per: int,
                   zero_filled: bool) -> np.ndarray:
        log = self.log
        n = log.in_service[steps].astype(np.float64)
        serving = n > 0
        arrived = np.where(serving, log.arrivals[steps], 0.0)

        def rows(x: np.ndarray) -> np.ndarray:
            return x.reshape(-1, per)

        if name in ("Invocations", "InvocationsPerInstance", "Invocation4XXErrors",
                    "Invocation5XXErrors", "InvocationModelErrors"):
            count = rows(arrived).sum(axis=1)
            if name == "Invocations":
                value = rows(arrived)
            elif name == "InvocationsPerInstance":
                value = rows(arrived / np.where(serving, n, 1.0))
            elif name == "Invocation4XXErrors":
                value = rows(np.zeros_like(arrived))
            else:
                value = rows(log.dropped[steps])
            return _counted(stat, value.sum(axis=1), count, zero_filled)
        if name == "ModelLatency":
            return self._latency(stat, steps, per)
        if name == "OverheadLatency":
            served = rows(np.maximum(log.served[steps], 0.0))
            overhead = served * self.profile.overhead_seconds * US_PER_SECOND
            return _counted(stat, overhead.sum(axis=1), served.sum(axis=1), False)
        if name == "CPUUtilization":
            return gauge(stat, rows(self._cpu(steps, n)), rows(serving))
        if name == "MemoryUtilization":
            if self.profile.memory_percent is None:
                return np.full(len(rows(n)), np.nan)
            return gauge(stat, rows(np.full_like(n, self.profile.memory_percent)), rows(serving))
        in_flight = (log.busy[steps] / self.dt + log.backlog[steps]) / np.where(serving, n, 1.0)
        return gauge(stat, rows(in_flight), rows(serving))

    def _cpu(self, steps: slice, n: np.ndarray) -> np.ndarray:
        busy = self.log.busy[steps]  # slot-seconds
        per_instance = np.where(n > 0, n, 1.0) * self.dt
        if self.profile.cpu_seconds_per_request is not None:
            served = busy / self.profile.service_time.mean
            cpu = served * self.profile.cpu_seconds_per_request / per_instance
            return np.minimum(cpu, self.profile.vcpu) * 100.0
        return np.minimum(busy / (per_instance * self.profile.concurrency), 1.0) * 100.0

    def _latency(self, stat: str, steps: slice, per: int,
                 waits: np.ndarray | None = None) -> np.ndarray:
        """`waits` per step instead of the log's (serverless: zeros, the cold start being
        ModelSetupTime rather than ModelLatency)."""
        served = np.maximum(self.log.served[steps], 0.0).reshape(-1, per)
        wait = (self.log.wait[steps] if waits is None else waits).reshape(-1, per)
        mean_s = self.profile.service_time.mean
        count = served.sum(axis=1)
        total = (served * (wait + mean_s)).sum(axis=1) * US_PER_SECOND
        with np.errstate(invalid="ignore", divide="ignore"):
            if stat in ("Average", "Sum", "SampleCount"):
                out = {"Average": total / count, "Sum": total, "SampleCount": count}[stat]
            elif stat in ("Minimum", "Maximum"):
                masked = np.where(served > 0, wait, np.nan)
                fn = np.nanmin if stat == "Minimum" else np.nanmax
                q = self.profile.service_time.quantiles
                edge = q[0] if stat == "Minimum" else q[-1]
                out = np.array([fn(r) if np.isfinite(r).any() else np.nan for r in masked])
                out = (out + edge) * US_PER_SECOND
            elif stat.startswith("p"):
                p = float(stat[1:])
                out = np.array([mixture_percentiles(w, s, self.profile, (p,))[p]
                                for w, s in zip(wait, served, strict=True)]) * US_PER_SECOND
            else:
                return np.full(len(count), np.nan)
        return np.where(count > 0, out, np.nan)


def _counted(stat: str, total: np.ndarray, count: np.ndarray, zero_filled: bool) -> np.ndarray:
    """A per-request metric: Sum, SampleCount, Average (Sum/SampleCount); an empty period is
    a 0 datapoint when the metric is zero-filled, else no datapoint."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if stat == "Sum":
            out = total
        elif stat == "SampleCount":
            out = count
        elif stat in ("Average", "Minimum", "Maximum") or stat.startswith("p"):
            out = np.where(count > 0, total / count, 0.0)
        else:
            out = np.full(len(total), np.nan)
    if zero_filled:
        return np.where(count > 0, out, 0.0)
    return np.where(count > 0, out, np.nan)


def gauge(stat: str, value: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A sampled gauge (one sample per step with instances serving)."""
    count = valid.sum(axis=1)
    masked = np.where(valid, value, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if stat == "Average":
            out = np.where(valid, value, 0.0).sum(axis=1) / count
        elif stat == "Maximum":
            out = np.array([np.nanmax(r) if c else np.nan for r, c in zip(masked, count,
                                                                           strict=True)])
        elif stat == "Minimum":
            out = np.array([np.nanmin(r) if c else np.nan for r, c in zip(masked, count,
                                                                           strict=True)])
        elif stat == "SampleCount":
            out = count.astype(np.float64)
        elif stat == "Sum":
            out = np.where(valid, value, 0.0).sum(axis=1)
        else:
            out = np.full(len(count), np.nan)
    return np.where(count > 0, out, np.nan)
