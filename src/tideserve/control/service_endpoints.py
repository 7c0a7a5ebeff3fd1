"""CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
UpdateEndpointWeightsAndCapacities, DeleteEndpoint.

They record desired state in the endpoint's row and wake the controller; they never start or
stop an instance. Each reads and writes its rows in one transaction (ControlStore.begin), so
two API calls, the controller, or two servers sharing the database change an endpoint one
after the other and none overwrites another's change.
"""

from __future__ import annotations

from typing import Any

from tideserve.control import tables as t
from tideserve.control.endpoint_specs import (
    EndpointSpec,
    UpdateEndpointSpec,
    WeightsAndCapacitiesSpec,
)
from tideserve.control.endpoint_views import describe_endpoint, endpoint_summary
from tideserve.control.kinds import VariantKinds
from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.control.plane import IN_PROGRESS, Plane, check_mutable
from tideserve.control.specs import EndpointConfigSpec, ModelSpec, ProductionVariantSpec
from tideserve.control.store import EndpointRow, Transaction
from tideserve.errors import AlreadyExistsError, ConflictError, ValidationError


class EndpointOps:
    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    def create(self, spec: EndpointSpec) -> dict[str, Any]:
        name = spec.endpoint_name
        arn = self.plane.arns.endpoint(name)
        now = self.plane.clock.now()
        with self.plane.store.begin() as tx:
            config = self._config(tx, spec.endpoint_config_name)
            row = EndpointRow(
                name=name, arn=arn, config_name=config.endpoint_config_name,
                pending_config_name=None, status="Creating", failure_reason=None,
                variants=self._variants_with_images(tx, config), creation_time=now,
                last_modified_time=now,
            )
            if not tx.insert_endpoint(row):
                raise AlreadyExistsError(f'Cannot create already existing endpoint "{arn}".')
            tx.put_tags(arn, [tag.to_wire() for tag in spec.tags])
        if self.plane.async_endpoints is not None:
            self.plane.async_endpoints.created(name, _wire(config.async_inference_config))
        self.plane.on_change(name)
        return {"EndpointArn": arn}

    def describe(self, name: str) -> dict[str, Any]:
        with self.plane.store.read() as tx:
            row = self.plane.endpoint(tx, name)
        return describe_endpoint(row, self.plane.kinds, self.plane.async_endpoints)

    def list_page(self, query: ListQuery) -> dict[str, Any]:
        rows = filter_and_sort(
            self.plane.store.list_endpoints(), query, name=lambda r: r.name,
            created=lambda r: r.creation_time, modified=lambda r: r.last_modified_time,
            status=lambda r: r.status,
        )
        return query.response("Endpoints", rows, endpoint_summary)

    def update(self, spec: UpdateEndpointSpec) -> dict[str, Any]:
        asyncs = self.plane.async_endpoints
        with self.plane.store.begin() as tx:
            config = self._config(tx, spec.endpoint_config_name)
            new_variants = self._variants_with_images(tx, config)
            row = self.plane.endpoint(tx, spec.endpoint_name, for_update=True)
            check_mutable(row)
            self.plane.kinds.check_update(row.variants, new_variants)
            if asyncs is not None:
                asyncs.check_update(row.name, dict(config.wire))
            for v in new_variants:
                old = row.variant(v["VariantName"])
                if old is None:
                    continue
                if spec.retains("DesiredInstanceCount"):
                    v["DesiredInstanceCount"] = old["DesiredInstanceCount"]
                if spec.retains("DesiredWeight"):
                    v["DesiredWeight"] = v["CurrentWeight"] = old["DesiredWeight"]
            row.status, row.failure_reason = "Updating", None
            row.pending_config_name = config.endpoint_config_name
            row.last_modified_time = self.plane.clock.now()
            # The new fleet's variants wait beside the serving ones until traffic shifts.
            row.pending_variants = new_variants
            tx.write_endpoint(row, bump=True)
        self.plane.on_change(row.name)
        if asyncs is not None:
            asyncs.updated(row.name, _wire(config.async_inference_config))
        return {"EndpointArn": row.arn}

    def update_weights_and_capacities(self, spec: WeightsAndCapacitiesSpec) -> dict[str, Any]:
        with self.plane.store.begin() as tx:
            row = self.plane.endpoint(tx, spec.endpoint_name, for_update=True)
            check_mutable(row)
            for wanted in spec.desired_weights_and_capacities:
                variant = row.variant(wanted.variant_name)
                if variant is None:
                    raise ValidationError(
                        f"The variant name(s) [{wanted.variant_name}] is/are not present in "
                        f'the endpoint "{row.arn}".'
                    )
                if wanted.desired_weight is not None:
                    variant["DesiredWeight"] = wanted.desired_weight
                self.plane.kinds.apply_capacity_update(variant, wanted)
                if wanted.desired_instance_count is not None:
                    variant["DesiredInstanceCount"] = wanted.desired_instance_count
            row.status, row.failure_reason = "Updating", None
            row.last_modified_time = self.plane.clock.now()
            tx.write_endpoint(row, bump=True)
        self.plane.on_change(row.name)
        return {"EndpointArn": row.arn}

    def delete(self, name: str) -> dict[str, Any]:
        with self.plane.store.begin() as tx:
            row = self.plane.endpoint(tx, name, for_update=True)
            if row.status in IN_PROGRESS and row.status != "Deleting":
                raise ConflictError(f'Cannot update in-progress endpoint "{row.arn}".')
            row.status = "Deleting"
            row.last_modified_time = self.plane.clock.now()
            tx.write_endpoint(row, bump=True)
            tx.delete_tags(row.arn)
        self.plane.on_change(row.name)
        if self.plane.async_endpoints is not None:
            self.plane.async_endpoints.deleted(row.name)
        return {}

    def _config(self, tx: Transaction, name: str) -> EndpointConfigSpec:
        row = self.plane.config(tx, name)
        return EndpointConfigSpec.load(row.spec)

    def _variants_with_images(
        self, tx: Transaction, config: EndpointConfigSpec
    ) -> list[dict[str, Any]]:
        variants = []
        for spec in config.production_variants:
            model = tx.resource(t.models, spec.model_name)
            if model is None:
                raise ValidationError(
                    f'Could not find model "{self.plane.arns.model(spec.model_name)}" of '
                    f"variant {spec.variant_name}."
                )
            variant = variant_from_config(spec, self.plane.kinds)
            variant["Images"] = ModelSpec.load(model.spec).images
            variants.append(variant)
        return variants


def variant_from_config(spec: ProductionVariantSpec, kinds: VariantKinds) -> dict[str, Any]:
    """The variants-JSON entry of a config's production variant, whatever its kind."""
    return kinds.variant_from_config(spec) or instance_variant(spec)


def instance_variant(v: ProductionVariantSpec) -> dict[str, Any]:
    """The variants-JSON entry of an instance-based production variant."""
    assert v.instance_type is not None and v.initial_instance_count is not None, v
    return {
        "VariantName": v.variant_name,
        "ModelName": v.model_name,
        "InstanceType": v.instance_type,
        "DesiredInstanceCount": v.initial_instance_count,
        "CurrentInstanceCount": 0,
        "DesiredWeight": v.initial_variant_weight,
        "CurrentWeight": v.initial_variant_weight,
    }


def _wire(config: Any) -> dict[str, Any] | None:
    return None if config is None else dict(config)
