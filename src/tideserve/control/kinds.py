"""Variant kinds as strategies: what the control plane asks of a kind of production variant
(serverless today; multi-model and pipelines will add theirs).

Two halves. `VariantKind` is the API's: configs, the variants JSON, DescribeEndpoint and the
scalable dimension; SageMakerService treats a variant no registered VariantKind owns as
instance-based. `KindConverger` is the Controller's: every endpoint converges in the first
registered converger that owns it, the instance-based one (control/instance_kind.py, which
also runs async endpoints' instances) included, registered last as the catch-all. A kind's
package may import `control` and never the other way round: the wiring (server.py) builds
each kind and hands it to SageMakerService, EndpointCapacity and the Controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tideserve.control.endpoint_specs import DesiredWeightAndCapacity
from tideserve.control.specs import EndpointConfigSpec, ProductionVariantSpec
from tideserve.control.store import EndpointRow
from tideserve.scaling.ports import Capacity


class VariantKind(Protocol):
    """The control-plane half of a kind: configs, the variants JSON, DescribeEndpoint and
    the scalable dimension. Variants are the endpoint row's variants-JSON dicts."""

    def claims_config(self, config: EndpointConfigSpec) -> bool:
        """This kind owns an endpoint config with these ProductionVariants."""
        ...

    def check_endpoint_config(self, config: EndpointConfigSpec) -> None:
        """CreateEndpointConfig's rules for a config this kind claims."""
        ...

    def variant_from_config(self, config_variant: ProductionVariantSpec) -> dict[str, Any] | None:
        """The variants-JSON entry of a config variant, or None if not this kind's."""
        ...

    def owns_variant(self, variant: dict[str, Any]) -> bool: ...

    def describe_variant(self, summary: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
        """DescribeEndpoint's ProductionVariantSummary of a variant this kind owns."""
        ...

    def check_update(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        """UpdateEndpoint from `old` to `new` variants: raise if this kind cannot take it."""
        ...

    def apply_capacity_update(
        self, variant: dict[str, Any], wanted: DesiredWeightAndCapacity
    ) -> None:
        """One DesiredWeightAndCapacity entry, seen by every kind for every variant: apply
        this kind's fields to its own variants and refuse them on others."""
        ...

    def capacity(self, variant: dict[str, Any], status: str) -> Capacity:
        """The variant's scalable dimension, desired and current."""
        ...

    def capacity_request(self, variant_name: str, n: int) -> dict[str, Any]:
        """The DesiredWeightAndCapacity entry that sets the variant's capacity to `n`."""
        ...


class ConvergeFailed(Exception):
    """A kind's converge failed; the message is the endpoint's whole FailureReason. (A
    TideserveError from converge instead reads "<label> capacity could not be provisioned: ...")
    """


class KindConverger(Protocol):
    """The data-plane half the Controller drives: endpoints of this kind converge here."""

    label: str  # how failure reasons name the kind: "Serverless capacity could not be ..."

    def owns(self, row: EndpointRow) -> bool: ...

    async def converge(self, row: EndpointRow) -> float | None:
        """Make what runs match the row (idempotent). Returns the clock time at which to
        converge again (a crash-loop backoff ends), or None; raises ConvergeFailed or
        TideserveError when it cannot."""
        ...

    async def teardown(self, endpoint_key: str) -> None:
        """The endpoint (lower-cased name) is gone, Deleting or Failed: stop what runs."""
        ...


class VariantKinds:
    """The registered kinds, asked in order; a variant no kind owns is instance-based."""

    def __init__(self, kinds: Sequence[VariantKind] = ()) -> None:
        self.kinds = tuple(kinds)

    def claiming_config(self, config: EndpointConfigSpec) -> VariantKind | None:
        return next((k for k in self.kinds if k.claims_config(config)), None)

    def owner(self, variant: dict[str, Any]) -> VariantKind | None:
        return next((k for k in self.kinds if k.owns_variant(variant)), None)

    def variant_from_config(self, config_variant: ProductionVariantSpec) -> dict[str, Any] | None:
        for kind in self.kinds:
            made = kind.variant_from_config(config_variant)
            if made is not None:
                return made
        return None

    def check_update(self, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        for kind in self.kinds:
            kind.check_update(old, new)

    def apply_capacity_update(
        self, variant: dict[str, Any], wanted: DesiredWeightAndCapacity
    ) -> None:
        for kind in self.kinds:
            kind.apply_capacity_update(variant, wanted)
