"""CreateEndpointConfig, DescribeEndpointConfig, ListEndpointConfigs, DeleteEndpointConfig."""

from __future__ import annotations

from typing import Any

from tideserve.control import tables as t
from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.control.multi_model import check_multi_model_variants
from tideserve.control.plane import Plane, ts
from tideserve.control.specs import EndpointConfigSpec, check_instance_variants
from tideserve.errors import AlreadyExistsError


class EndpointConfigOps:
    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    def check_variants(self, spec: EndpointConfigSpec) -> None:
        """The variants' rules: their kind's (serverless) or instance-based ones."""
        kind = self.plane.kinds.claiming_config(spec)
        if kind is not None:
            kind.check_endpoint_config(spec)
        else:
            check_instance_variants(spec.production_variants, self.plane.catalog)

    def create(self, spec: EndpointConfigSpec) -> dict[str, Any]:
        self.check_variants(spec)
        name = spec.endpoint_config_name
        arn = self.plane.arns.endpoint_config(name)
        with self.plane.store.begin() as tx:
            models = {name: self.plane.model(tx, name) for name in spec.model_names}
            check_multi_model_variants(spec, {n: m.spec for n, m in models.items()})
            if not tx.insert_resource(t.endpoint_configs, name, arn, dict(spec.wire),
                                      self.plane.clock.now()):
                raise AlreadyExistsError(
                    f'Cannot create already existing endpoint configuration "{arn}".'
                )
            tx.put_tags(arn, [tag.to_wire() for tag in spec.tags])
        return {"EndpointConfigArn": arn}

    def describe(self, name: str) -> dict[str, Any]:
        with self.plane.store.read() as tx:
            row = self.plane.config(tx, name)
        variants = [{"InitialVariantWeight": 1.0, **v} for v in row.spec["ProductionVariants"]]
        out = {k: v for k, v in row.spec.items() if k not in ("EndpointConfigName",)}
        out["ProductionVariants"] = variants
        return {"EndpointConfigName": row.name, "EndpointConfigArn": row.arn, **out,
                "CreationTime": ts(row.creation_time)}

    def list_page(self, query: ListQuery) -> dict[str, Any]:
        rows = filter_and_sort(
            self.plane.store.list_resources(t.endpoint_configs), query, name=lambda r: r.name,
            created=lambda r: r.creation_time,
        )
        return query.response("EndpointConfigs", rows, lambda r: {
            "EndpointConfigName": r.name, "EndpointConfigArn": r.arn,
            "CreationTime": ts(r.creation_time)})

    def delete(self, name: str) -> dict[str, Any]:
        with self.plane.store.begin() as tx:
            row = self.plane.config(tx, name, for_update=True)
            tx.delete_resource(t.endpoint_configs, row.name)
            tx.delete_tags(row.arn)
        return {}
