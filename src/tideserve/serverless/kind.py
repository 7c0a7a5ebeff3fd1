"""The serverless variant kind as the control plane consults it (control/kinds.VariantKind):
the rules and shapes live in config.py and capacity.py; this only names them for the
registry that server.py builds. The control plane hands it parsed specs; config.py's rules
read the request members as the wire gave them (`wire`)."""

from __future__ import annotations

from typing import Any

from tideserve.control.endpoint_specs import DesiredWeightAndCapacity
from tideserve.control.specs import EndpointConfigSpec, ProductionVariantSpec
from tideserve.scaling.ports import Capacity
from tideserve.serverless import capacity, config


class ServerlessKind:
    def claims_config(self, spec: EndpointConfigSpec) -> bool:
        return any(v.serverless_config is not None for v in spec.production_variants)

    def check_endpoint_config(self, spec: EndpointConfigSpec) -> None:
        config.check_endpoint_config(dict(spec.wire))

    def variant_from_config(self, config_variant: ProductionVariantSpec) -> dict[str, Any] | None:
        if config_variant.serverless_config is None:
            return None
        return config.variant_from_config(dict(config_variant.wire))

    def owns_variant(self, variant: dict[str, Any]) -> bool:
        return config.is_serverless(variant)

    def describe_variant(self, summary: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
        return config.variant_summary(summary, variant)

    def check_update(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        config.reject_update(old, new)

    def apply_capacity_update(
        self, variant: dict[str, Any], wanted: DesiredWeightAndCapacity
    ) -> None:
        config.apply_update(variant, dict(wanted.wire))

    def capacity(self, variant: dict[str, Any], status: str) -> Capacity:
        return capacity.provisioned_capacity(variant, status)

    def capacity_request(self, variant_name: str, n: int) -> dict[str, Any]:
        return capacity.provisioned_update(variant_name, n)
