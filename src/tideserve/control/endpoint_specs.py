"""The endpoint requests as typed, frozen values (control/specs.py says why): CreateEndpoint,
UpdateEndpoint and UpdateEndpointWeightsAndCapacities, with botocore's names in snake case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.control.specs import Tag
from tideserve.errors import ValidationError


@dataclass(frozen=True)
class EndpointSpec:
    """CreateEndpoint's input."""

    endpoint_name: str
    endpoint_config_name: str
    tags: tuple[Tag, ...]

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> EndpointSpec:
        return cls(p["EndpointName"], p["EndpointConfigName"], Tag.parse_all(p.get("Tags")))


@dataclass(frozen=True)
class UpdateEndpointSpec:
    endpoint_name: str
    endpoint_config_name: str
    retain_all_variant_properties: bool
    exclude_retained_variant_properties: frozenset[str]  # VariantPropertyType values

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> UpdateEndpointSpec:
        return cls(
            p["EndpointName"], p["EndpointConfigName"],
            bool(p.get("RetainAllVariantProperties")),
            frozenset(e["VariantPropertyType"]
                      for e in p.get("ExcludeRetainedVariantProperties") or ()),
        )

    def retains(self, variant_property: str) -> bool:
        return (self.retain_all_variant_properties
                and variant_property not in self.exclude_retained_variant_properties)


@dataclass(frozen=True)
class ServerlessUpdateConfig:
    """ProductionVariantServerlessUpdateConfig: a member left out keeps its value."""

    max_concurrency: int | None
    provisioned_concurrency: int | None


@dataclass(frozen=True)
class DesiredWeightAndCapacity:
    variant_name: str
    desired_weight: float | None
    desired_instance_count: int | None
    serverless_update_config: ServerlessUpdateConfig | None
    wire: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> DesiredWeightAndCapacity:
        update = raw.get("ServerlessUpdateConfig")
        return cls(
            variant_name=raw["VariantName"],
            desired_weight=_opt(float, raw.get("DesiredWeight")),
            desired_instance_count=_opt(int, raw.get("DesiredInstanceCount")),
            serverless_update_config=None if update is None else ServerlessUpdateConfig(
                _opt(int, update.get("MaxConcurrency")),
                _opt(int, update.get("ProvisionedConcurrency")),
            ),
            wire=dict(raw),
        )


@dataclass(frozen=True)
class WeightsAndCapacitiesSpec:
    """UpdateEndpointWeightsAndCapacities' input: each variant named once."""

    endpoint_name: str
    desired_weights_and_capacities: tuple[DesiredWeightAndCapacity, ...]

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> WeightsAndCapacitiesSpec:
        wanted = tuple(DesiredWeightAndCapacity.parse(w) for w in p["DesiredWeightsAndCapacities"])
        seen: set[str] = set()
        for w in wanted:
            if w.variant_name in seen:
                raise ValidationError(f"The variant name(s) [{w.variant_name}] are repeated.")
            seen.add(w.variant_name)
        return cls(p["EndpointName"], wanted)


def _opt(convert: Any, value: Any) -> Any:
    return None if value is None else convert(value)
