"""What a policy set serves on — the endpoint kind — so that one scenario compares real-time,
serverless and asynchronous hosting on the same trace, profile and SLO.

Each policy set carries its own `kind` (default `realtime`), and the settings of that kind:

    - name: serverless-2gb
      kind: serverless
      serverless: {memory_size_mb: 2048, max_concurrency: 20, provisioned_concurrency: 0,
                   cold_start_seconds: 8, keep_alive_seconds: 300}
    - name: async-scale-to-zero
      kind: async
      async: {max_concurrent_invocations_per_instance: 4, request_ttl_seconds: 21600,
              initial_instances: 0}
      register_scalable_target: {MinCapacity: 0, MaxCapacity: 4}
      put_scaling_policy: [...]      # AWS's pattern, as boto3 takes it (spec §1.8)
      put_metric_alarm: [...]

Serverless scales itself (spec §1.8 3); a serverless set may also scale its provisioned
concurrency with Application Auto Scaling, in the same calls (sim.scenario's docstring), as
a live serverless variant does. Every set is run by the same engine and tick; the async one
reads the backlog metrics instead of invocations, the serverless one the serverless metrics
(sim.serverless_loop).

Defaults are the live implementation's: keep-alive 300 s (serverless/config.py, AWS does not
document it), MaxConcurrentInvocationsPerInstance 4 (asyncinf/config.py), RequestTTL 6 h.
A cold start defaults to the profile's start-up delay and must fit the 3-minute serverless
cold-start limit (spec §3.4).

Prices (spec §6.1, approximate, us-east-1): on-demand serverless at $0.00002 per GB-second of
request duration (cost.catalog), no per-request fee, nothing while idle; the cold start is not
billed (the live billing meters the model's time only). Provisioned concurrency: every
provisioned GB-second at cost.catalog's SERVERLESS_PROVISIONED_USD_PER_GB_SECOND, and request
duration on provisioned workers at the on-demand rate — the live billing's rates, imported from
the one rate table, so a rehearsal costs what the live run bills.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.cost.catalog import (
    SERVERLESS_PROVISIONED_USD_PER_GB_SECOND,
    SERVERLESS_USD_PER_GB_SECOND,
)
from tideserve.errors import ValidationError
from tideserve.serverless.config import (
    COLD_START_TIMEOUT_SECONDS,
    DEFAULT_KEEP_ALIVE_AWS_SECONDS,
    MAX_CONCURRENCY_LIMIT,
    MEMORY_SIZES_MB,
)

REALTIME, SERVERLESS, ASYNC = "realtime", "serverless", "async"
KINDS = (REALTIME, SERVERLESS, ASYNC)

ON_DEMAND_USD_PER_GB_SECOND = SERVERLESS_USD_PER_GB_SECOND
PROVISIONED_USD_PER_GB_SECOND = SERVERLESS_PROVISIONED_USD_PER_GB_SECOND
# Live bills request duration on provisioned workers at the on-demand rate (cost/catalog.py).
PROVISIONED_DURATION_USD_PER_GB_SECOND = SERVERLESS_USD_PER_GB_SECOND

# asyncinf/config.py's DEFAULT_MAX_CONCURRENT_PER_INSTANCE and asyncinf/front.py's
# DEFAULT_TTL_SECONDS (not imported: front pulls in the wire layer).
DEFAULT_MAX_CONCURRENT_PER_INSTANCE = 4
DEFAULT_REQUEST_TTL_SECONDS = 21_600.0  # X-Amzn-SageMaker-RequestTTLSeconds: 60 to 21600


@dataclass(frozen=True)
class ServerlessSpec:
    memory_size_mb: int  # MemorySizeInMB: 1024..6144 in 1024 steps
    max_concurrency: int  # requests served at once (one per worker); more are throttled
    provisioned_concurrency: int  # workers always warm (and always billed)
    cold_start_seconds: float  # ModelSetupTime: start a worker, load the model, first /ping
    keep_alive_seconds: float  # an idle worker beyond the provisioned ones stops after this

    @property
    def memory_gb(self) -> float:
        return self.memory_size_mb / 1024


@dataclass(frozen=True)
class AsyncSpec:
    max_concurrent_invocations_per_instance: int = DEFAULT_MAX_CONCURRENT_PER_INSTANCE
    request_ttl_seconds: float = DEFAULT_REQUEST_TTL_SECONDS  # queued longer: expired
    initial_instances: int | None = None  # None: the endpoint's initial_instances


def parse_serverless(raw: Any, where: str, startup_seconds: float) -> ServerlessSpec:
    if raw is None:
        raise ValidationError(f"{where}: missing (memory_size_mb and max_concurrency are "
                              "required)")
    raw = _mapping(raw, where)
    _known(raw, where, {"memory_size_mb", "max_concurrency", "provisioned_concurrency",
                        "cold_start_seconds", "keep_alive_seconds"})
    memory = _whole(raw, where, "memory_size_mb", None)
    if memory not in MEMORY_SIZES_MB:
        raise ValidationError(f"Value {memory} at '{where}.memory_size_mb' failed to satisfy "
                              f"constraint: Member must be one of {list(MEMORY_SIZES_MB)}")
    most = _whole(raw, where, "max_concurrency", None)
    if not 1 <= most <= MAX_CONCURRENCY_LIMIT:
        raise ValidationError(f"Value {most} at '{where}.max_concurrency' failed to satisfy "
                              f"constraint: Member must be between 1 and {MAX_CONCURRENCY_LIMIT}")
    provisioned = _whole(raw, where, "provisioned_concurrency", 0)
    if provisioned > most:
        raise ValidationError(f"{where}.provisioned_concurrency ({provisioned}) must be less "
                              f"than or equal to max_concurrency ({most})")
    cold = _seconds(raw, where, "cold_start_seconds", startup_seconds)
    if cold > COLD_START_TIMEOUT_SECONDS:
        origin = "" if "cold_start_seconds" in raw else " (the profile's startup_seconds)"
        raise ValidationError(
            f"Value {cold:g} at '{where}.cold_start_seconds'{origin} failed to satisfy "
            f"constraint: a serverless cold start must finish within "
            f"{COLD_START_TIMEOUT_SECONDS:g} s (spec §3.4); give cold_start_seconds")
    keep = _seconds(raw, where, "keep_alive_seconds", DEFAULT_KEEP_ALIVE_AWS_SECONDS)
    return ServerlessSpec(memory, most, provisioned, cold, keep)


def parse_async(raw: Any, where: str) -> AsyncSpec:
    raw = _mapping({} if raw is None else raw, where)
    _known(raw, where, {"max_concurrent_invocations_per_instance", "request_ttl_seconds",
                        "initial_instances"})
    per = _whole(raw, where, "max_concurrent_invocations_per_instance",
                 DEFAULT_MAX_CONCURRENT_PER_INSTANCE)
    if per < 1:
        raise ValidationError(f"Value {per} at '{where}.max_concurrent_invocations_per_"
                              "instance' failed to satisfy constraint: Member must be ≥ 1")
    ttl = _seconds(raw, where, "request_ttl_seconds", DEFAULT_REQUEST_TTL_SECONDS)
    if not 60 <= ttl <= DEFAULT_REQUEST_TTL_SECONDS:
        raise ValidationError(f"Value {ttl:g} at '{where}.request_ttl_seconds' failed to "
                              "satisfy constraint: Member must be between 60 and 21600")
    initial = raw.get("initial_instances")
    if initial is not None:
        initial = _whole(raw, where, "initial_instances", None)
    return AsyncSpec(per, ttl, initial)


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return dict(raw)


def _known(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: "
                              f"{', '.join(sorted(allowed))})")


def _whole(raw: Mapping[str, Any], where: str, key: str, default: int | None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise ValidationError(f"{where}.{key} is required")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"Value {value!r} at '{where}.{key}' failed to satisfy "
                              "constraint: Member must be a whole number ≥ 0")
    return value


def _seconds(raw: Mapping[str, Any], where: str, key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValidationError(f"Value {value!r} at '{where}.{key}' failed to satisfy "
                              "constraint: Member must be a number of seconds ≥ 0")
    return float(value)
