"""Wiring for AWS Budgets (budgets/): the API, the effects its actions have on endpoints,
AAS targets and jobs, the audit trail they write to, and the CreateEndpoint guard that
APPLY_SCP_POLICY actions close. Built once by server.build, like trust.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from tideserve.api.ports import AuditPort
from tideserve.api.rpc import OperationRegistry
from tideserve.autoscaling.store import ScalingStore
from tideserve.budgets.effects import CapacityPort, Effects, Targets
from tideserve.budgets.service import Budgets
from tideserve.budgets.store import BudgetStore
from tideserve.clock import Clock
from tideserve.control.names import Arns
from tideserve.control.sagemaker import SageMakerService
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.cost.forecast_api import CostForecasts
from tideserve.cost.ledger import Ledger
from tideserve.cost.rightsizing_api import Rightsizing
from tideserve.cost.savings_api import PLANS_FILE, SavingsPlans
from tideserve.cost.sources import tags_from_store
from tideserve.errors import AccessDeniedError, TideserveError
from tideserve.metrics.store import MetricStore
from tideserve.settings import Settings

Operation = Callable[[dict[str, Any]], dict[str, Any]]


def build_budgets(engine: Engine, settings: Settings, ledger: Ledger, clock: Clock,
                  sagemaker: SageMakerService, capacity: CapacityPort,
                  scaling_store: ScalingStore, jobs: dict[str, Operation],
                  audit: AuditPort, registry: OperationRegistry) -> Budgets:
    """`jobs`: SageMaker's operations, for Describe/Stop of transform and training jobs."""

    def variants_of(name: str) -> list[tuple[str, bool]] | None:
        row = sagemaker.store.get_endpoint(name)
        if row is None or row.name != name:
            return None
        return [(v["VariantName"], sagemaker.kinds.owner(v) is not None) for v in row.variants]

    def min_capacity(resource_id: str) -> int | None:
        for record in scaling_store.targets():
            target = record.state.target
            if (target.key.resource_id == resource_id
                    and target.key.scalable_dimension == "sagemaker:variant:DesiredInstanceCount"):
                return target.min_capacity
        return None

    def stopper(kind: str) -> Callable[[str], bool]:
        def stop(name: str) -> bool:
            try:
                jobs[f"Describe{kind}"]({f"{kind}Name": name})
            except TideserveError:
                return False
            jobs[f"Stop{kind}"]({f"{kind}Name": name})
            return True
        return stop

    targets = Targets(capacity, variants_of, min_capacity, stopper("TransformJob"),
                      stopper("TrainingJob"))
    effects = Effects(targets, audit, settings.account, settings.region)
    budgets = Budgets(BudgetStore(engine), ledger, tags_from_store(sagemaker.store), clock,
                      settings.account, effects)
    registry.register_all("budgets", budgets.operations())
    create = sagemaker.operations()["CreateEndpoint"]

    def guarded_create_endpoint(params: dict[str, Any]) -> dict[str, Any]:
        tags = {t.get("Key"): t.get("Value") for t in params.get("Tags") or []}
        if effects.refused(tags):
            raise AccessDeniedError(
                f"CreateEndpoint {params.get('EndpointName')} refused: a budget action "
                "(APPLY_SCP_POLICY) denies new endpoints with these tags.")
        return create(params)

    registry.register("sagemaker", "CreateEndpoint", guarded_create_endpoint)
    return budgets


def cost_advice(metrics: MetricStore, ledger: Ledger, catalog: Catalog, clock: Clock,
                settings: Settings, store: ControlStore, arns: Arns
                ) -> list[tuple[str, Operation]]:
    """Cost Explorer's advice operations: rightsizing, cost forecasts, Savings Plans."""
    tags_for = tags_from_store(store)
    ops: dict[str, Operation] = {}
    ops.update(Rightsizing(metrics, ledger, catalog, clock, settings.account, settings.region,
                           arns.endpoint, tags_for).operations())
    ops.update(CostForecasts(ledger, tags_for, clock).operations())
    ops.update(SavingsPlans(ledger, catalog, clock, settings.state_dir / PLANS_FILE).operations())
    return list(ops.items())
