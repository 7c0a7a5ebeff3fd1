"""A scenario: the traffic, the endpoint and its serving profile, the SLO, and the candidate
policy sets — read from YAML, checked once here (policy parameters by the engine's own
validators, through engine_adapter.build_world) into frozen objects.

    name: azure-code
    trace: {path: "../traces/azure_llm_code_2023_1s.csv",   # relative to this file
            rate_scale: 4, start_seconds: 0, duration_seconds: 3600, tile_to_seconds: null,
            quiet_tail_seconds: 0}    # then this long without traffic
    endpoint: {name: code, variant: AllTraffic, instance_type: ml.g5.xlarge,
               initial_instances: 1}
    profile: {service_time: {p50: 0.4, p90: 0.9, p99: 1.6}, concurrency: 4,
              startup_seconds: 300, timeout_seconds: 60, cpu_seconds_per_request: null,
              overhead_seconds: 0, memory_percent: null}
    slo: {latency_seconds: 2.0, percentile: 99}
    simulation: {step_seconds: 1, metric_period: 60, mode: fluid, seed: 0,
                 start_time: "2024-01-01T00:00:00Z",
                 history_seconds: 0}   # the trace's first part: history only, not scored
    policy_sets:
      - name: aws-default
        register_scalable_target: {MinCapacity: 1, MaxCapacity: 8}
        put_scaling_policy: [{PolicyName: tt, PolicyType: TargetTrackingScaling,
                              TargetTrackingScalingPolicyConfiguration: {...}}]
        put_metric_alarm: []        # CloudWatch PutMetricAlarm parameters
        put_scheduled_action: []    # AAS PutScheduledAction parameters

Each policy-set entry is the parameter dict of that boto3 call (see engine_adapter for the
placeholders). `profile` may instead say `measure: {url, state_dir, hours}` to read
the service time and start-up delay from a live tideserve endpoint of that name.

A real-time policy set may carry `tideserve_policy` (tideserve's latency target and burst mode,
beyond AWS; sim.extension has the YAML) instead of put_scaling_policy and put_metric_alarm.

A policy set may say `kind: serverless` or `kind: async` (default realtime) with the settings
of that kind, so one scenario compares the three on one trace (sim.kinds has the YAML).

A serverless set may scale its provisioned concurrency as a boto3 user does live: the same
four calls, whose ScalableDimension defaults to sagemaker:variant:DesiredProvisionedConcurrency
(MinCapacity/MaxCapacity bound ProvisionedConcurrency; MaxCapacity at most max_concurrency);
`simulation.mode: requests` is exact, fluid approximates the utilization it scales on:

      - name: serverless-pc-tracked
        kind: serverless
        serverless: {memory_size_mb: 2048, max_concurrency: 8, provisioned_concurrency: 1,
                     cold_start_seconds: 5}
        register_scalable_target: {MinCapacity: 1, MaxCapacity: 4}
        put_scaling_policy: [{PolicyName: pc, PolicyType: TargetTrackingScaling,
                              TargetTrackingScalingPolicyConfiguration: {TargetValue: 0.5,
                                PredefinedMetricSpecification: {PredefinedMetricType:
                                  SageMakerVariantProvisionedConcurrencyUtilization}}}]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tideserve.cost.catalog import Catalog
from tideserve.errors import ValidationError
from tideserve.sim.engine_adapter import PolicySet, build_world
from tideserve.sim.extension_spec import KEY as EXTENSION
from tideserve.sim.extension_spec import parse_tideserve_policy
from tideserve.sim.kinds import (
    ASYNC,
    KINDS,
    REALTIME,
    SERVERLESS,
    ServerlessSpec,
    parse_async,
    parse_serverless,
)
from tideserve.sim.profile import Profile, measure_profile, service_time_from
from tideserve.sim.trace import Trace, expand_path, load_trace

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC
MODES = ("fluid", "requests")


@dataclass(frozen=True)
class Endpoint:
    name: str
    variant: str
    instance_type: str
    initial_instances: int
    hourly_usd: float  # on-demand price per instance-hour, from the catalog

    @property
    def resource_id(self) -> str:
        return f"endpoint/{self.name}/variant/{self.variant}"


@dataclass(frozen=True)
class Slo:
    latency_seconds: float  # a request slower than this misses the SLO
    percentile: float = 99.0  # the baseline keeps this share of each period's requests within


@dataclass(frozen=True)
class SimOptions:
    step_seconds: float = 1.0
    metric_period: float = 60.0  # the live server's --period: 60 as AWS, less to compress
    mode: str = "fluid"  # fluid | requests
    seed: int = 0
    start_time: float = DEFAULT_START.timestamp()  # epoch seconds of the trace's first bin
    # The trace's first seconds are history only (predictive policies forecast from them);
    # every policy is simulated and scored on the rest (sim.predictive.split_history).
    history_seconds: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    trace: Trace
    rate_scale: float
    endpoint: Endpoint
    profile: Profile
    slo: Slo
    policy_sets: tuple[PolicySet, ...]
    options: SimOptions = field(default_factory=SimOptions)

    def arrivals(self) -> np.ndarray:
        return self.trace.arrivals(self.options.step_seconds, self.rate_scale)


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValidationError(f"Scenario {path} is not valid YAML: {exc}") from exc
    return scenario_from_dict(raw, path.parent)


def scenario_from_dict(raw: Any, base_dir: Path | None = None) -> Scenario:
    root = _mapping(raw, "scenario")
    _known(root, "scenario", {"name", "trace", "endpoint", "profile", "slo", "simulation",
                              "policy_sets"})
    options = _options(root.get("simulation") or {})
    trace, scale = _trace(_mapping(root.get("trace"), "trace"), base_dir)
    endpoint = _endpoint(_mapping(root.get("endpoint"), "endpoint"))
    profile = _profile(_mapping(root.get("profile"), "profile"), endpoint, options)
    slo_raw = _mapping(root.get("slo"), "slo")
    slo = Slo(_number(slo_raw, "slo", "latency_seconds"),
              _number(slo_raw, "slo", "percentile", 99.0))
    if not 0 < slo.percentile < 100:
        raise ValidationError("slo.percentile must be between 0 and 100")
    sets = tuple(_policy_set(s, i, endpoint, profile, slo) for i, s in enumerate(
        _list(root.get("policy_sets"), "policy_sets")))
    if not sets:
        raise ValidationError("policy_sets: give at least one policy set")
    if len({s.name for s in sets}) != len(sets):
        raise ValidationError("policy_sets: names must be unique")
    for s in sets:  # refused parameters fail here, before any simulation runs
        build_world(s, endpoint.name, endpoint.variant, initial_instances(s, endpoint),
                    options.start_time)
    return Scenario(str(root.get("name") or "scenario"), trace, scale, endpoint, profile, slo,
                    sets, options)


def _trace(raw: Mapping[str, Any], base_dir: Path | None) -> tuple[Trace, float]:
    _known(raw, "trace", {"path", "rate_scale", "start_seconds", "duration_seconds",
                          "tile_to_seconds", "quiet_tail_seconds"})
    if not isinstance(raw.get("path"), str):
        raise ValidationError("trace.path: give the CSV's path (t_seconds,requests)")
    trace = load_trace(expand_path(raw["path"], base_dir))
    duration = raw.get("duration_seconds")
    trace = trace.window(_number(raw, "trace", "start_seconds", 0.0),
                         None if duration is None else _number(raw, "trace", "duration_seconds"))
    if raw.get("tile_to_seconds") is not None:
        trace = trace.tiled(_number(raw, "trace", "tile_to_seconds"))
    if raw.get("quiet_tail_seconds"):
        trace = trace.with_quiet_tail(_number(raw, "trace", "quiet_tail_seconds"))
    return trace, _number(raw, "trace", "rate_scale", 1.0)


def _endpoint(raw: Mapping[str, Any]) -> Endpoint:
    _known(raw, "endpoint", {"name", "variant", "instance_type", "initial_instances"})
    instance_type = str(raw.get("instance_type") or "")
    price = Catalog.default().get(instance_type).on_demand_hourly_usd
    initial = raw.get("initial_instances", 1)
    if not isinstance(initial, int) or initial < 0:
        raise ValidationError("endpoint.initial_instances must be a whole number ≥ 0")
    return Endpoint(str(raw.get("name") or "sim"), str(raw.get("variant") or "AllTraffic"),
                    instance_type, initial, price)


def _profile(raw: Mapping[str, Any], endpoint: Endpoint, options: SimOptions) -> Profile:
    _known(raw, "profile", {"service_time", "concurrency", "startup_seconds",
                            "shutdown_seconds", "timeout_seconds", "cpu_seconds_per_request",
                            "overhead_seconds", "memory_percent", "measure"})
    concurrency = raw.get("concurrency")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError("profile.concurrency must be a whole number ≥ 1 (requests one "
                              "instance serves at once)")
    vcpu = Catalog.default().get(endpoint.instance_type).vcpu
    if "measure" in raw:
        base = _measured(_mapping(raw["measure"], "profile.measure"), endpoint, concurrency,
                         raw.get("startup_seconds"), vcpu)
        service, startup = base.service_time, base.startup_seconds
    else:
        service = service_time_from(raw.get("service_time"))
        startup = _number(raw, "profile", "startup_seconds")
    cpu = raw.get("cpu_seconds_per_request")
    memory = raw.get("memory_percent")
    return Profile(endpoint.instance_type, service, concurrency, startup,
                   _number(raw, "profile", "shutdown_seconds", 0.0),
                   _number(raw, "profile", "timeout_seconds", 60.0),
                   None if cpu is None else _number(raw, "profile", "cpu_seconds_per_request"),
                   vcpu, _number(raw, "profile", "overhead_seconds", 0.0),
                   None if memory is None else _number(raw, "profile", "memory_percent"))


def _measured(raw: Mapping[str, Any], endpoint: Endpoint, concurrency: int,
              startup: Any, vcpu: int) -> Profile:
    from tideserve.client import DEFAULT_URL, client

    cw = client("cloudwatch", str(raw.get("url") or DEFAULT_URL),
                str(raw.get("state_dir") or ".tideserve"))
    end = datetime.now(UTC)
    start = end - timedelta(hours=float(raw.get("hours", 1)))
    return measure_profile(cw, endpoint.name, endpoint.variant, start, end,
                           instance_type=endpoint.instance_type, concurrency=concurrency,
                           startup_seconds=None if startup is None else float(startup),
                           vcpu=vcpu)


def _options(raw: Any) -> SimOptions:
    raw = _mapping(raw, "simulation")
    _known(raw, "simulation", {"step_seconds", "metric_period", "mode", "seed", "start_time",
                               "history_seconds"})
    mode = raw.get("mode", "fluid")
    if mode not in MODES:
        raise ValidationError(f"simulation.mode {mode!r} is not one of {', '.join(MODES)}")
    start = raw.get("start_time", DEFAULT_START)
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if isinstance(start, datetime):
        start = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
    step = _number(raw, "simulation", "step_seconds", 1.0)
    period = _number(raw, "simulation", "metric_period", 60.0)
    if abs(period / step - round(period / step)) > 1e-9 or float(start) % period:
        raise ValidationError("simulation: metric_period must be a multiple of step_seconds "
                              "and start_time a multiple of metric_period (CloudWatch periods "
                              "start on the minute)")
    history = _number(raw, "simulation", "history_seconds", 0.0)
    if history < 0 or history % period:
        raise ValidationError("simulation.history_seconds must be a non-negative multiple of "
                              "metric_period")
    return SimOptions(step, period, mode, int(raw.get("seed", 0)), float(start), history)


AAS_CALLS = ("register_scalable_target", "put_scaling_policy", "put_metric_alarm",
             "put_scheduled_action")


def initial_instances(policy_set: PolicySet, endpoint: Endpoint) -> int:
    """Instances in service when the run starts: an async set may start at zero; a
    serverless set's capacity is its ProvisionedConcurrency."""
    if policy_set.serverless is not None:
        return policy_set.serverless.provisioned_concurrency
    spec = policy_set.asynchronous
    if spec is not None and spec.initial_instances is not None:
        return spec.initial_instances
    return endpoint.initial_instances


def _policy_set(raw: Any, index: int, endpoint: Endpoint, profile: Profile,
                slo: Slo) -> PolicySet:
    where = f"policy_sets[{index}]"
    raw = _mapping(raw, where)
    _known(raw, where, {"name", "kind", "serverless", "async", EXTENSION, *AAS_CALLS})
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{where}.name: give each policy set a name")
    kind = raw.get("kind", REALTIME)
    if kind not in KINDS:
        raise ValidationError(f"{where}.kind {kind!r} is not one of {', '.join(KINDS)}")
    for key, owner in ((SERVERLESS, SERVERLESS), ("async", ASYNC)):
        if key in raw and kind != owner:
            raise ValidationError(f"{where}.{key}: only for a policy set with kind: {owner}")
    if kind == SERVERLESS:
        spec = parse_serverless(raw.get(SERVERLESS), f"{where}.serverless",
                                profile.startup_seconds)
        return _serverless_set(raw, where, name, spec)
    asynchronous = None
    if kind == ASYNC:
        asynchronous = parse_async(raw.get("async"), f"{where}.async")
        if asynchronous.initial_instances is None:
            asynchronous = replace(asynchronous, initial_instances=endpoint.initial_instances)
    policies, alarms, actions = _calls(raw, where)
    target = _mapping(raw.get("register_scalable_target"), f"{where}.register_scalable_target")
    extension = None
    if raw.get(EXTENSION) is not None:  # tideserve's own policy (sim.extension)
        if kind != REALTIME or policies or alarms:
            raise ValidationError(f"{where}.{EXTENSION}: only for a real-time set without "
                                  "put_scaling_policy or put_metric_alarm")
        extension = parse_tideserve_policy(raw[EXTENSION], f"{where}.{EXTENSION}", target,
                                           (slo.latency_seconds, slo.percentile))
    return PolicySet(name, target, policies, alarms, actions, asynchronous=asynchronous,
                     extension=extension)


def _calls(raw: Mapping[str, Any], where: str) -> tuple[tuple[dict[str, Any], ...], ...]:
    """The PutScalingPolicy, PutMetricAlarm and PutScheduledAction parameter lists."""
    return tuple(tuple(_mapping(p, f"{where}.{k}") for p in _list(raw.get(k), f"{where}.{k}"))
                 for k in AAS_CALLS[1:])


def _serverless_set(raw: Mapping[str, Any], where: str, name: str,
                    spec: ServerlessSpec) -> PolicySet:
    """A serverless set scales itself; with `register_scalable_target` its provisioned
    concurrency is scaled too, in the instance-based sets' shapes."""
    policies, alarms, actions = _calls(raw, where)
    if not raw.get("register_scalable_target"):
        calls = [k for k in AAS_CALLS[1:] if raw.get(k)]
        if calls:
            raise ValidationError(f"{where}: {', '.join(calls)} given without "
                                  "register_scalable_target (the provisioned concurrency's)")
        return PolicySet(name, {}, serverless=spec)
    target = _mapping(raw["register_scalable_target"], f"{where}.register_scalable_target")
    top = target.get("MaxCapacity")
    if isinstance(top, int) and top > spec.max_concurrency:
        # Live, each scale-out beyond it fails (ServerlessUpdateConfig is refused).
        raise ValidationError(
            f"{where}.register_scalable_target.MaxCapacity ({top}) must be less than or equal "
            f"to serverless.max_concurrency ({spec.max_concurrency}): provisioned concurrency "
            "cannot exceed MaxConcurrency")
    return PolicySet(name, target, policies, alarms, actions, serverless=spec)


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        raise ValidationError(f"{where}: missing")
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return dict(raw)


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _known(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: "
                              f"{', '.join(sorted(allowed))})")


def _number(raw: Mapping[str, Any], where: str, key: str, default: float | None = None) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValidationError(f"Value {value!r} at '{where}.{key}' failed to satisfy "
                              "constraint: Member must be a number ≥ 0")
    return float(value)


def policy_set_from_dict(raw: Any, scenario: Scenario, index: int = 0) -> PolicySet:
    """One policy set in the YAML's shape, checked against `scenario` as load_scenario checks
    its own (the tuner builds its candidates with it)."""
    policy_set = _policy_set(raw, index, scenario.endpoint, scenario.profile, scenario.slo)
    build_world(policy_set, scenario.endpoint.name, scenario.endpoint.variant,
                initial_instances(policy_set, scenario.endpoint), scenario.options.start_time)
    return policy_set
