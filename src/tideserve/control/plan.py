"""The controller's decisions, as plain functions: what to do to an endpoint given what the API
recorded (desired) and what runs (observed). No I/O and no clock: `now` is an input.

Two levels, as the work splits: `plan` is the endpoint's lifecycle (tear down what was
deleted or failed, hand the endpoint to the kind that owns its variants, settle its status),
and each kind converges its own variants — instance-based ones by `plan_fleet.plan_fleet`.
The executors (controller.py, instance_kind.py) carry the actions out and plan again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tideserve.control.store import EndpointRow

# Statuses that a successful converge turns into InService.
SETTLING = ("Creating", "Updating", "SystemUpdating")


@dataclass(frozen=True)
class VariantSpec:
    """One production variant as the row holds it: desired fields and the recorded Current*."""

    name: str
    model: str
    instance_type: str
    count: int  # DesiredInstanceCount
    weight: float  # DesiredWeight
    current_count: int = 0  # CurrentInstanceCount as last written
    current_weight: float = 0.0  # CurrentWeight as last written
    restart_status: Any = None  # RestartStatus as last written (control/restarts.py)

    @classmethod
    def of(cls, v: dict[str, Any]) -> VariantSpec:
        weight = _number(v.get("DesiredWeight"), 1.0)
        return cls(
            name=v["VariantName"], model=v.get("ModelName") or "",
            instance_type=v.get("InstanceType") or "",
            count=int(_number(v.get("DesiredInstanceCount"), 0)),
            weight=weight,
            current_count=int(_number(v.get("CurrentInstanceCount"), 0)),
            current_weight=_number(v.get("CurrentWeight"), weight),
            restart_status=v.get("RestartStatus"),
        )


@dataclass(frozen=True)
class Desired:
    """The endpoint row, typed: what the API asked for."""

    name: str
    status: str
    generation: int
    config_name: str
    variants: tuple[VariantSpec, ...]
    pending_config_name: str | None = None  # a blue/green UpdateEndpoint's new config
    pending_variants: tuple[VariantSpec, ...] = ()
    kind: str = ""  # the label of the kind whose converger owns the endpoint

    @classmethod
    def of(cls, row: EndpointRow, kind: str = "") -> Desired:
        return cls(
            name=row.name, status=row.status, generation=row.generation,
            config_name=row.config_name,
            variants=tuple(VariantSpec.of(v) for v in row.variants),
            pending_config_name=row.pending_config_name,
            pending_variants=tuple(VariantSpec.of(v) for v in row.pending_variants),
            kind=kind,
        )


@dataclass(frozen=True)
class EndpointObserved:
    """What the controller knows of an endpoint beyond its row."""

    held: bool = False  # some kind was handed the endpoint since it was last torn down
    failure: str | None = None  # the reason the last converge failed, in this reconcile


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Teardown:
    """Stop everything every kind runs for the endpoint, and drop its route."""


@dataclass(frozen=True)
class DeleteRow:
    """DeleteEndpoint's last step, once its instances are gone."""


@dataclass(frozen=True)
class ConvergeKind:
    """Hand the endpoint to the kind that owns it (its converge is idempotent)."""

    kind: str


@dataclass(frozen=True)
class MarkInService:
    """InService, unless newer desired state (a later generation) arrived meanwhile."""

    generation: int


@dataclass(frozen=True)
class MarkFailed:
    """A converge failed: a Creating endpoint fails (and is then torn down); any other keeps
    serving what it has, with the reason in FailureReason."""

    reason: str


EndpointAction = Teardown | DeleteRow | ConvergeKind | MarkInService | MarkFailed


def plan(desired: Desired | None, observed: EndpointObserved) -> list[EndpointAction]:
    """The endpoint's next steps. `desired` is None once its row is gone."""
    if desired is None or desired.status == "Failed":
        return [Teardown()] if observed.held else []
    if desired.status == "Deleting":
        return [Teardown(), DeleteRow()]
    if observed.failure is not None:
        return [MarkFailed(observed.failure)]
    steps: list[EndpointAction] = [ConvergeKind(desired.kind)]
    if desired.status in SETTLING:
        steps.append(MarkInService(desired.generation))
    return steps


def _number(value: Any, default: float) -> float:
    """A variants-JSON number; a kind's variant may leave instance fields out (serverless)."""
    return float(value) if value is not None else default
