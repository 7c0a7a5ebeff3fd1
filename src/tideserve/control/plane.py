"""What every hosting operation shares: the store, ARNs, the price catalog, the clock, the
variant kinds and the hooks to the controller and async inference; and the look-ups that turn
a missing name into AWS's not-found wording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.clock import Clock
from tideserve.control import tables as t
from tideserve.control.kinds import VariantKinds
from tideserve.control.names import Arns
from tideserve.control.store import ControlStore, EndpointRow, Transaction
from tideserve.cost.catalog import Catalog
from tideserve.errors import ConflictError, NotFoundError, ValidationError

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


@dataclass
class Plane:
    store: ControlStore
    arns: Arns
    catalog: Catalog
    clock: Clock
    kinds: VariantKinds
    on_change: Callable[[str], None]  # wakes the controller for the named endpoint
    async_endpoints: AsyncEndpoints | None = None  # server.py sets it once async is wired

    def model(self, tx: Transaction, name: str, *, for_update: bool = False) -> Any:
        row = tx.resource(t.models, name, for_update=for_update)
        if row is None:
            raise NotFoundError(f'Could not find model "{self.arns.model(name)}".')
        return row

    def config(self, tx: Transaction, name: str, *, for_update: bool = False) -> Any:
        row = tx.resource(t.endpoint_configs, name, for_update=for_update)
        if row is None:
            raise NotFoundError(
                f'Could not find endpoint configuration "{self.arns.endpoint_config(name)}".'
            )
        return row

    def endpoint(self, tx: Transaction, name: str, *, for_update: bool = False) -> EndpointRow:
        row = tx.endpoint(name, for_update=for_update)
        if row is None:
            raise NotFoundError(f'Could not find endpoint "{self.arns.endpoint(name)}".')
        return row


def check_mutable(row: EndpointRow) -> None:
    """UpdateEndpoint and UpdateEndpointWeightsAndCapacities need a settled endpoint."""
    if row.status in IN_PROGRESS:
        raise ConflictError(f'Cannot update in-progress endpoint "{row.arn}".')
    if row.status == "Failed":
        raise ValidationError(f'Cannot update failed endpoint "{row.arn}".')
