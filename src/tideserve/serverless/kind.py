"""The serverless variant kind as the control plane consults it (control/kinds.VariantKind):
the rules and shapes live in config.py and capacity.py; this only names them for the
registry that server.py builds."""

from __future__ import annotations

from typing import Any

from tideserve.scaling.ports import Capacity
from tideserve.serverless import capacity, config


class ServerlessKind:
    def claims_config(self, config_variants: list[dict[str, Any]]) -> bool:
        return config.uses_serverless(config_variants)

    def check_endpoint_config(self, params: dict[str, Any]) -> None:
        config.check_endpoint_config(params)

    def variant_from_config(self, config_variant: dict[str, Any]) -> dict[str, Any] | None:
        if "ServerlessConfig" not in config_variant:
            return None
        return config.variant_from_config(config_variant)

    def owns_variant(self, variant: dict[str, Any]) -> bool:
        return config.is_serverless(variant)

    def describe_variant(self, summary: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
        return config.variant_summary(summary, variant)

    def check_update(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        config.reject_update(old, new)

    def apply_capacity_update(self, variant: dict[str, Any], wanted: dict[str, Any]) -> None:
        config.apply_update(variant, wanted)

    def capacity(self, variant: dict[str, Any], status: str) -> Capacity:
        return capacity.provisioned_capacity(variant, status)

    def capacity_request(self, variant_name: str, n: int) -> dict[str, Any]:
        return capacity.provisioned_update(variant_name, n)
