"""A CreateInferenceRecommendationsJob request, checked once into frozen objects (spec §11.2).

The wire layer has already checked botocore's shapes (types, enums, ranges); this module
checks what the model cannot say: exactly one of ModelName / ModelPackageVersionArn, phase
continuity, burstable types, instance types the price catalog does not know, a percentile
other than P95/P99. Every error is a ValidationException naming the field and the value.

Durations here are AWS seconds (a phase of 120 s); the runner compresses them by the server's
time scale (--period 2 runs a 120 s phase in 4 s), as every AWS duration in tideserve is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tideserve.cost.catalog import Catalog, InstanceType
from tideserve.errors import ValidationError

# The traffic SageMaker picks for a Default job is undocumented; ours ramps from 1 user by 4
# users a minute for 3 minutes (13 users: past the plateau of a CPU model on 2-4 vCPUs; AWS's
# guide reports an XGBoost model peaking with 15-20 users on ml.c5.large).
DEFAULT_PHASE = (1, 4, 180)
DEFAULT_TYPES = 3  # how many instance types a Default job benchmarks (AWS examples: 3-4)
DEFAULT_LATENCY_PERCENTILE = "P95"


@dataclass(frozen=True)
class Phase:
    initial_users: int
    spawn_rate: int  # new users per minute
    duration_seconds: int  # AWS seconds


@dataclass(frozen=True)
class Traffic:
    """Users over (AWS) time. STAIRS is kept as phases: step length DurationInSeconds /
    NumberOfSteps, UsersPerStep more users each step (the guide's reading; the API reference
    calls DurationInSeconds the length of each step, spec §11.2 records the ambiguity)."""

    phases: tuple[Phase, ...]

    @property
    def duration_seconds(self) -> int:
        return sum(p.duration_seconds for p in self.phases)

    def users_at(self, t: float) -> int:
        """Users at AWS second `t` from the start (the last phase's end holds on)."""
        start = 0.0
        for phase in self.phases:
            if t < start + phase.duration_seconds:
                return phase.initial_users + int(phase.spawn_rate * (t - start) / 60.0)
            start += phase.duration_seconds
        last = self.phases[-1]
        return last.initial_users + int(last.spawn_rate * last.duration_seconds / 60.0)


@dataclass(frozen=True)
class Stopping:
    max_invocations: int | None  # requests per minute the endpoint must handle
    percentile: str  # P95 | P99
    latency_ms: int | None  # ModelLatencyThresholds' ValueInMilliseconds
    flat_stop: bool  # FlatInvocations == Stop (AWS's default)


@dataclass(frozen=True)
class Candidate:
    instance_type: InstanceType
    environment: dict[str, str]


@dataclass(frozen=True)
class JobSpec:
    name: str
    job_type: str  # Default | Advanced
    model_name: str
    candidates: tuple[Candidate, ...]
    traffic: Traffic
    stopping: Stopping
    payload_url: str
    content_type: str
    max_parallel: int
    job_duration_seconds: int | None

    @staticmethod
    def parse(p: dict[str, Any], catalog: Catalog, machine_cores: int) -> JobSpec:
        config = p["InputConfig"]
        model = _model_name(config)
        if config.get("Endpoints"):
            raise ValidationError("InputConfig.Endpoints: tideserve does not benchmark existing "
                                  "endpoints yet; name EndpointConfigurations to test")
        container = config.get("ContainerConfig") or {}
        payload = container.get("PayloadConfig") or {}
        url = payload.get("SamplePayloadUrl")
        if not url:
            raise ValidationError("InputConfig.ContainerConfig.PayloadConfig.SamplePayloadUrl "
                                  "is required: tideserve replays those payloads in each test")
        types = payload.get("SupportedContentTypes") or ["text/csv"]
        advanced = p["JobType"] == "Advanced"
        if advanced and not config.get("EndpointConfigurations"):
            raise ValidationError("InputConfig.EndpointConfigurations: an Advanced job needs "
                                  "the endpoint configurations to benchmark")
        candidates = (_candidates(config["EndpointConfigurations"], catalog)
                      if config.get("EndpointConfigurations")
                      else default_candidates(container, catalog, machine_cores))
        traffic = _traffic(config.get("TrafficPattern")) if advanced else Traffic(
            (Phase(*DEFAULT_PHASE),))
        duration = config.get("JobDurationInSeconds")
        if duration and traffic.duration_seconds > duration:
            raise ValidationError(
                f"Total traffic duration {traffic.duration_seconds} s is greater than "
                f"InputConfig.JobDurationInSeconds {duration} s")
        limit = config.get("ResourceLimit") or {}
        if limit.get("MaxNumberOfTests") and len(candidates) > limit["MaxNumberOfTests"]:
            raise ValidationError(
                f"InputConfig.ResourceLimit.MaxNumberOfTests {limit['MaxNumberOfTests']} is "
                f"less than the {len(candidates)} endpoint configurations to test")
        return JobSpec(p["JobName"], p["JobType"], model, candidates, traffic,
                       _stopping(p.get("StoppingConditions") or {}), url, str(types[0]),
                       int(limit.get("MaxParallelOfTests") or 1), duration)


def _model_name(config: dict[str, Any]) -> str:
    name, package = config.get("ModelName"), config.get("ModelPackageVersionArn")
    if bool(name) == bool(package):
        raise ValidationError("InputConfig: give exactly one of ModelName and "
                              "ModelPackageVersionArn")
    if package:
        raise ValidationError(f"InputConfig.ModelPackageVersionArn {package}: tideserve has no "
                              "model registry; give ModelName (a model made with CreateModel)")
    if not config.get("ContainerConfig"):
        raise ValidationError("InputConfig.ContainerConfig is required with ModelName")
    return str(name)


def _candidates(configs: list[dict[str, Any]], catalog: Catalog) -> tuple[Candidate, ...]:
    out = []
    for i, c in enumerate(configs):
        where = f"InputConfig.EndpointConfigurations.{i + 1}"
        if "ServerlessConfig" in c:
            raise ValidationError(f"{where}.ServerlessConfig: tideserve benchmarks instance "
                                  "types only; give InstanceType")
        if not c.get("InstanceType"):
            raise ValidationError(f"{where}.InstanceType is required")
        out.append(Candidate(_instance_type(c["InstanceType"], catalog, where),
                             _environment(c.get("EnvironmentParameterRanges") or {})))
    return tuple(out)


def _instance_type(name: str, catalog: Catalog, where: str) -> InstanceType:
    if name.startswith("ml.t2."):
        raise ValidationError(f"Burstable instance type {name} is not allowed.")
    if name not in catalog:
        raise ValidationError(f"{where}.InstanceType {name!r} is not in tideserve's price "
                              f"catalog (known: {', '.join(catalog.names())})")
    return catalog.get(name)


def _environment(ranges: dict[str, Any]) -> dict[str, str]:
    """The first value of each categorical range: one test per configuration (tideserve does
    not expand the cross product of ranges; a decision, see the README)."""
    return {str(r["Name"]): str(r["Value"][0])
            for r in ranges.get("CategoricalParameterRanges") or [] if r.get("Value")}


def default_candidates(container: dict[str, Any], catalog: Catalog,
                       machine_cores: int) -> tuple[Candidate, ...]:
    """A Default job's instance types. The rule (AWS does not publish its own): the types
    ContainerConfig.SupportedInstanceTypes names (up to 4), else the DEFAULT_TYPES cheapest
    CPU types of the catalog that are not burstable (ml.t*) and that this machine can hold
    (vCPUs ≤ its cores), one per family (ml.c5, ml.m5, ml.r5, ...), so the choice spans
    compute-, general- and memory-optimised shapes near the smallest that serves."""
    named = container.get("SupportedInstanceTypes") or []
    if named:
        return tuple(Candidate(_instance_type(n, catalog, "ContainerConfig."
                                              "SupportedInstanceTypes"), {})
                     for n in named[:4])
    fits = sorted((t for t in (catalog.get(n) for n in catalog.names())
                   if t.gpu_count == 0 and not t.name.startswith("ml.t")
                   and t.vcpu <= machine_cores), key=lambda t: (t.on_demand_hourly_usd, t.name))
    chosen: list[InstanceType] = []
    for t in fits:
        family = t.name.rsplit(".", 1)[0]
        if all(c.name.rsplit(".", 1)[0] != family for c in chosen):
            chosen.append(t)
    if not chosen:
        raise ValidationError(f"No catalog instance type fits this machine ({machine_cores} "
                              "cores); name them in ContainerConfig.SupportedInstanceTypes")
    return tuple(Candidate(t, {}) for t in chosen[:DEFAULT_TYPES])


def _traffic(raw: dict[str, Any] | None) -> Traffic:
    if not raw:
        return Traffic((Phase(*DEFAULT_PHASE),))
    kind = raw.get("TrafficType", "PHASES")
    if kind == "STAIRS":
        stairs = raw.get("Stairs") or {}
        steps, per = int(stairs.get("NumberOfSteps", 0)), int(stairs.get("UsersPerStep", 0))
        total = int(stairs.get("DurationInSeconds", 0))
        if steps < 1 or per < 1 or total < 1:
            raise ValidationError("InputConfig.TrafficPattern.Stairs needs DurationInSeconds, "
                                  "NumberOfSteps and UsersPerStep, each at least 1")
        length = max(1, math.floor(total / steps))
        return Traffic(tuple(Phase(per * (i + 1), 0, length) for i in range(steps)))
    phases = raw.get("Phases") or []
    if not phases:
        raise ValidationError("InputConfig.TrafficPattern.Phases: give at least one phase")
    out: list[Phase] = []
    for i, ph in enumerate(phases):
        where = f"InputConfig.TrafficPattern.Phases.{i + 1}"
        for key in ("InitialNumberOfUsers", "SpawnRate", "DurationInSeconds"):
            if key not in ph:
                raise ValidationError(f"{where}.{key} is required")
        phase = Phase(int(ph["InitialNumberOfUsers"]), int(ph["SpawnRate"]),
                      int(ph["DurationInSeconds"]))
        if out:
            prev = out[-1]
            end = prev.initial_users + int(prev.spawn_rate * prev.duration_seconds / 60)
            if abs(phase.initial_users - end) > 3:
                raise ValidationError(
                    f"Users at the end of prev phase is {end} while initial users of current "
                    f"phase is {phase.initial_users}")
        out.append(phase)
    return Traffic(tuple(out))


def _stopping(raw: dict[str, Any]) -> Stopping:
    thresholds = raw.get("ModelLatencyThresholds") or []
    if len(thresholds) > 1:
        raise ValidationError("StoppingConditions.ModelLatencyThresholds: give exactly one")
    percentile, latency = DEFAULT_LATENCY_PERCENTILE, None
    if thresholds:
        percentile = str(thresholds[0].get("Percentile", DEFAULT_LATENCY_PERCENTILE)).upper()
        if percentile not in ("P95", "P99"):
            raise ValidationError(f"StoppingConditions.ModelLatencyThresholds.1.Percentile "
                                  f"{thresholds[0].get('Percentile')!r} is not P95 or P99")
        if thresholds[0].get("ValueInMilliseconds") is None:
            raise ValidationError("StoppingConditions.ModelLatencyThresholds.1."
                                  "ValueInMilliseconds is required")
        latency = int(thresholds[0]["ValueInMilliseconds"])
    return Stopping(raw.get("MaxInvocations"), percentile, latency,
                    raw.get("FlatInvocations", "Stop") == "Stop")
