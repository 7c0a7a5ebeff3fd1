"""ServerlessConfig at the edge: validated once into a typed value, the rules of spec §2.3
(CreateEndpointConfig) and the shape it takes in the endpoint's variants JSON and in
DescribeEndpoint (§2.5).

A serverless variant keeps `DesiredInstanceCount`/`CurrentInstanceCount` at 0 in the variants
JSON so that code written for instance variants reads it safely, and carries
`DesiredServerlessConfig` (what was asked for) and `CurrentServerlessConfig` (what the pool
has applied). DescribeEndpoint reports the two configs instead of instance counts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from tideserve.cost.catalog import SERVERLESS_USD_PER_GB_SECOND, InstanceType
from tideserve.errors import ValidationError

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY_LIMIT = 200  # per endpoint (spec §3.4)
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # request and response, 4 MB (spec §3.4)
INVOCATION_TIMEOUT_SECONDS = 60.0
COLD_START_TIMEOUT_SECONDS = 180.0  # model download + first successful /ping (spec §3.4)
# AWS does not document how long an idle serverless container is kept; observed behaviour
# (and Lambda's) is several minutes. Five AWS minutes, compressed like every AWS duration by
# Settings.time_scale (`--period 2` -> 10 s); KEEP_ALIVE_ENV overrides it in our seconds.
DEFAULT_KEEP_ALIVE_AWS_SECONDS = 300.0
KEEP_ALIVE_ENV = "TIDESERVE_SERVERLESS_KEEP_ALIVE"
# AWS allocates vCPUs in proportion to memory without publishing the ratio; Lambda's is one
# vCPU per 1769 MB. We give one per started 2 GB: 1-2 GB -> 1, 3-4 GB -> 2, 5-6 GB -> 3.
MB_PER_VCPU = 2048

# Features a serverless endpoint config cannot combine with (spec §2.3, §3.4).
_EXCLUDED_CONFIG_FIELDS = {
    "AsyncInferenceConfig": "AsyncInferenceConfig",
    "DataCaptureConfig": "data capture (DataCaptureConfig)",
    "ShadowProductionVariants": "shadow variants",
    "VpcConfig": "VPC configuration (VpcConfig)",
    "EnableNetworkIsolation": "network isolation",
}
_INSTANCE_FIELDS = ("InstanceType", "InitialInstanceCount", "ManagedInstanceScaling",
                    "AcceleratorType", "InstancePools")


@dataclass(frozen=True)
class ServerlessConfig:
    memory_mb: int  # MemorySizeInMB
    max_concurrency: int  # requests served at once, one per worker
    provisioned_concurrency: int = 0  # workers kept warm; 0 = on demand only

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str = "ServerlessConfig") -> ServerlessConfig:
        memory = _int(raw, "MemorySizeInMB", where)
        if memory not in MEMORY_SIZES_MB:
            raise ValidationError(
                f"Value '{memory}' at '{where}.MemorySizeInMB' failed to satisfy constraint: "
                f"Member must be one of {list(MEMORY_SIZES_MB)}."
            )
        config = cls(memory, _int(raw, "MaxConcurrency", where),
                     _int(raw, "ProvisionedConcurrency", where, default=0))
        config.check(where)
        return config

    def check(self, where: str = "ServerlessConfig") -> None:
        if not 1 <= self.max_concurrency <= MAX_CONCURRENCY_LIMIT:
            raise ValidationError(
                f"Value '{self.max_concurrency}' at '{where}.MaxConcurrency' failed to satisfy "
                f"constraint: Member must be between 1 and {MAX_CONCURRENCY_LIMIT}."
            )
        if self.provisioned_concurrency and not 1 <= self.provisioned_concurrency <= 200:
            raise ValidationError(
                f"Value '{self.provisioned_concurrency}' at '{where}.ProvisionedConcurrency' "
                "failed to satisfy constraint: Member must be between 1 and 200."
            )
        if self.provisioned_concurrency > self.max_concurrency:
            raise ValidationError(
                f"{where}.ProvisionedConcurrency ({self.provisioned_concurrency}) must be less "
                f"than or equal to MaxConcurrency ({self.max_concurrency})."
            )

    def to_wire(self) -> dict[str, int]:
        out = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency:
            out["ProvisionedConcurrency"] = self.provisioned_concurrency
        return out

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024

    def instance_type(self) -> InstanceType:
        """The synthetic type a worker runs as: memory = MemorySizeInMB, vCPUs by
        MB_PER_VCPU, priced per second of duration at the serverless GB-second rate."""
        return InstanceType(
            name=usage_type_name(self.memory_mb),
            vcpu=max(1, math.ceil(self.memory_mb / MB_PER_VCPU)),
            memory_gib=self.memory_gb, gpu_count=0, gpu_model="", gpu_memory_gib=0.0,
            on_demand_hourly_usd=self.memory_gb * SERVERLESS_USD_PER_GB_SECOND * 3600,
            spot_discount=0.0, savings_plan_rate=1.0, confidence="approx",
        )


def usage_type_name(memory_mb: int) -> str:
    """`ml.serverless.2gb`: the instance type serverless usage is metered under."""
    return f"ml.serverless.{memory_mb // 1024}gb"


def _int(raw: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    if key not in raw or raw[key] is None:
        if default is not None:
            return default
        raise ValidationError(f"{where}.{key} is required.")
    try:
        return int(raw[key])
    except (TypeError, ValueError):
        raise ValidationError(
            f"Value '{raw[key]}' at '{where}.{key}' must be an integer."
        ) from None


def keep_alive_seconds(time_scale: float) -> float:
    """How long an idle worker beyond the provisioned ones stays warm, in our seconds."""
    raw = os.environ.get(KEEP_ALIVE_ENV)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(f"{KEEP_ALIVE_ENV}={raw!r} is not a number of seconds.") from None
        if value < 0:
            raise ValidationError(f"{KEEP_ALIVE_ENV} must not be negative, got {value}.")
        return value
    return DEFAULT_KEEP_ALIVE_AWS_SECONDS * time_scale


# -- the variants JSON and the API shapes --------------------------------------------------


def is_serverless(variant: dict[str, Any]) -> bool:
    """A variant of the endpoint's variants JSON (or of a config) that is serverless."""
    return "DesiredServerlessConfig" in variant or "ServerlessConfig" in variant


def uses_serverless(config_variants: list[dict[str, Any]]) -> bool:
    return any("ServerlessConfig" in v for v in config_variants)


def check_endpoint_config(p: dict[str, Any]) -> ServerlessConfig:
    """CreateEndpointConfig with a serverless variant: the rules of spec §2.3."""
    variants = p["ProductionVariants"]
    if not all("ServerlessConfig" in v for v in variants):
        raise ValidationError(
            "Serverless and instance-based production variants cannot be mixed in one "
            "endpoint configuration."
        )
    if len(variants) != 1:
        raise ValidationError(
            "A serverless endpoint configuration supports exactly one production variant."
        )
    for key, words in _EXCLUDED_CONFIG_FIELDS.items():
        if p.get(key):
            raise ValidationError(f"Serverless endpoints do not support {words}.")
    v = variants[0]
    name = v["VariantName"]
    present = [f for f in _INSTANCE_FIELDS if v.get(f) is not None]
    if present:
        raise ValidationError(
            f"Variant '{name}' has a ServerlessConfig and so cannot specify "
            f"{', '.join(present)}."
        )
    if not v.get("ModelName"):
        raise ValidationError(f"Variant '{name}' must name a ModelName.")
    return ServerlessConfig.parse(v["ServerlessConfig"],
                                  "ProductionVariants.1.member.ServerlessConfig")


def variant_from_config(v: dict[str, Any]) -> dict[str, Any]:
    """The variants-JSON entry of a serverless production variant."""
    config = ServerlessConfig.parse(v["ServerlessConfig"])
    weight = float(v.get("InitialVariantWeight", 1.0))
    return {
        "VariantName": v["VariantName"],
        "ModelName": v["ModelName"],
        "DesiredInstanceCount": 0,
        "CurrentInstanceCount": 0,
        "DesiredWeight": weight,
        "CurrentWeight": weight,
        "DesiredServerlessConfig": config.to_wire(),
    }


def desired(variant: dict[str, Any]) -> ServerlessConfig:
    return ServerlessConfig.parse(variant["DesiredServerlessConfig"])


def variant_summary(out: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """DescribeEndpoint's ProductionVariantSummary of a serverless variant: the configs
    instead of instance counts (spec §2.5). CurrentServerlessConfig appears once applied."""
    out.pop("CurrentInstanceCount", None)
    out.pop("DesiredInstanceCount", None)
    if variant.get("CurrentServerlessConfig"):
        out["CurrentServerlessConfig"] = dict(variant["CurrentServerlessConfig"])
    out["DesiredServerlessConfig"] = dict(variant["DesiredServerlessConfig"])
    return out


def apply_update(variant: dict[str, Any], wanted: dict[str, Any]) -> None:
    """UpdateEndpointWeightsAndCapacities for one variant: ServerlessUpdateConfig
    {MaxConcurrency, ProvisionedConcurrency} on a serverless variant only."""
    name = variant["VariantName"]
    update = wanted.get("ServerlessUpdateConfig")
    if not is_serverless(variant):
        if update is not None:
            raise ValidationError(
                f"Variant {name} is not serverless: ServerlessUpdateConfig cannot be applied."
            )
        return
    if "DesiredInstanceCount" in wanted:
        raise ValidationError(
            f"Variant {name} is serverless: use ServerlessUpdateConfig instead of "
            "DesiredInstanceCount."
        )
    if not update:
        return
    current = desired(variant)
    new = ServerlessConfig(
        current.memory_mb,
        int(update.get("MaxConcurrency", current.max_concurrency)),
        int(update.get("ProvisionedConcurrency", current.provisioned_concurrency)),
    )
    new.check("ServerlessUpdateConfig")
    variant["DesiredServerlessConfig"] = new.to_wire()


def reject_update(old_variants: list[dict[str, Any]], new_variants: list[dict[str, Any]]) -> None:
    """UpdateEndpoint to or from a serverless config is not supported yet."""
    if any(is_serverless(v) for v in [*old_variants, *new_variants]):
        raise ValidationError(
            "UpdateEndpoint is not supported yet for serverless endpoints: use "
            "UpdateEndpointWeightsAndCapacities with ServerlessUpdateConfig, or delete and "
            "recreate the endpoint."
        )
