"""CreateModel, DescribeModel, ListModels, DeleteModel."""

from __future__ import annotations

from typing import Any

from tideserve.control import tables as t
from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.control.plane import Plane, ts
from tideserve.control.specs import ModelSpec
from tideserve.errors import AlreadyExistsError


class ModelOps:
    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    def create(self, spec: ModelSpec) -> dict[str, Any]:
        arn = self.plane.arns.model(spec.model_name)
        with self.plane.store.begin() as tx:
            if not tx.insert_resource(t.models, spec.model_name, arn, dict(spec.wire),
                                      self.plane.clock.now()):
                raise AlreadyExistsError(f'Cannot create already existing model "{arn}".')
            tx.put_tags(arn, [tag.to_wire() for tag in spec.tags])
        return {"ModelArn": arn}

    def describe(self, name: str) -> dict[str, Any]:
        with self.plane.store.read() as tx:
            row = self.plane.model(tx, name)
        out = {k: v for k, v in row.spec.items() if k != "ModelName"}
        out.setdefault("EnableNetworkIsolation", False)
        return {"ModelName": row.name, **out, "CreationTime": ts(row.creation_time),
                "ModelArn": row.arn}

    def list_page(self, query: ListQuery) -> dict[str, Any]:
        rows = filter_and_sort(
            self.plane.store.list_resources(t.models), query, name=lambda r: r.name,
            created=lambda r: r.creation_time,
        )
        return query.response("Models", rows, lambda r: {
            "ModelName": r.name, "ModelArn": r.arn, "CreationTime": ts(r.creation_time)})

    def delete(self, name: str) -> dict[str, Any]:
        with self.plane.store.begin() as tx:
            row = self.plane.model(tx, name, for_update=True)
            tx.delete_resource(t.models, row.name)
            tx.delete_tags(row.arn)
        return {}
