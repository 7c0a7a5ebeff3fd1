"""The SageMaker hosting control plane: models, endpoint configs, endpoints, tags.

Handlers take the operation's input as botocore's model names it (already validated against
the shape at the edge) and return its output. They record desired state and wake the
controller; they never start or stop an instance themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tideserve.asyncinf.config import check_async_config
from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.clock import Clock
from tideserve.control import tables as t
from tideserve.control.kinds import VariantKinds
from tideserve.control.listing import filter_and_sort, page
from tideserve.control.names import Arns
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.cost.catalog import Catalog
from tideserve.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from tideserve.serving.images import resolve_runtime

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class SageMakerService:
    def __init__(
        self,
        store: ControlStore,
        arns: Arns,
        catalog: Catalog,
        clock: Clock,
        on_change: Callable[[str], None] = lambda name: None,
        kinds: VariantKinds | None = None,
    ) -> None:
        self.store = store
        self.arns = arns
        self.catalog = catalog
        self.clock = clock
        self.on_change = on_change  # wakes the controller for the named endpoint
        self.kinds = kinds or VariantKinds()  # variant kinds other than instance-based
        self.async_endpoints: AsyncEndpoints | None = None  # server.py sets it

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "ListModels": self.list_models,
            "DeleteModel": self.delete_model,
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": self.describe_endpoint_config,
            "ListEndpointConfigs": self.list_endpoint_configs,
            "DeleteEndpointConfig": self.delete_endpoint_config,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": self.describe_endpoint,
            "ListEndpoints": self.list_endpoints,
            "UpdateEndpoint": self.update_endpoint,
            "UpdateEndpointWeightsAndCapacities": self.update_endpoint_weights_and_capacities,
            "DeleteEndpoint": self.delete_endpoint,
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
            "DeleteTags": self.delete_tags,
        }

    # -- models ------------------------------------------------------------------------------

    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        containers = model_containers(p)
        for container in containers:
            check_container(container)
        arn = self.arns.model(name)
        spec = {k: v for k, v in p.items() if k != "Tags"}
        if not self.store.insert_resource(t.models, name, arn, spec, self.clock.now()):
            raise AlreadyExistsError(f'Cannot create already existing model "{arn}".')
        self.store.put_tags(arn, p.get("Tags") or [])
        return {"ModelArn": arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._model(p["ModelName"])
        out = {k: v for k, v in row.spec.items() if k != "ModelName"}
        out.setdefault("EnableNetworkIsolation", False)
        return {"ModelName": row.name, **out, "CreationTime": ts(row.creation_time),
                "ModelArn": row.arn}

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = filter_and_sort(
            self.store.list_resources(t.models), p, name=lambda r: r.name,
            created=lambda r: r.creation_time,
        )
        chunk, token = page(rows, p)
        out: dict[str, Any] = {"Models": [
            {"ModelName": r.name, "ModelArn": r.arn, "CreationTime": ts(r.creation_time)}
            for r in chunk
        ]}
        if token:
            out["NextToken"] = token
        return out

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._model(p["ModelName"])
        self.store.delete_resource(t.models, row.name)
        self.store.delete_tags(row.arn)
        return {}

    def _model(self, name: str) -> Any:
        row = self.store.get_resource(t.models, name)
        if row is None:
            raise NotFoundError(f'Could not find model "{self.arns.model(name)}".')
        return row

    # -- endpoint configs --------------------------------------------------------------------

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        arn = self.arns.endpoint_config(name)
        self._check_variants(p)
        spec = {k: v for k, v in p.items() if k != "Tags"}
        if not self.store.insert_resource(t.endpoint_configs, name, arn, spec, self.clock.now()):
            raise AlreadyExistsError(
                f'Cannot create already existing endpoint configuration "{arn}".'
            )
        self.store.put_tags(arn, p.get("Tags") or [])
        return {"EndpointConfigArn": arn}

    def _check_variants(self, p: dict[str, Any]) -> None:
        check_async_config(p)
        variants = p["ProductionVariants"]
        kind = self.kinds.claiming_config(variants)
        if kind is not None:
            kind.check_endpoint_config(p)
            for v in variants:
                self._model(v["ModelName"])
            return
        seen: set[str] = set()
        for v in variants:
            if v["VariantName"] in seen:
                raise ValidationError(
                    f"Variant names must be unique: '{v['VariantName']}' appears more than once."
                )
            seen.add(v["VariantName"])
            if not v.get("ModelName"):
                raise ValidationError(f"Variant '{v['VariantName']}' must name a ModelName.")
            self._model(v["ModelName"])
            if not v.get("InstanceType"):
                raise ValidationError(f"Variant '{v['VariantName']}' must specify an InstanceType.")
            self.catalog.get(v["InstanceType"])
            if int(v.get("InitialInstanceCount", 0)) < 1:
                raise ValidationError(
                    f"Variant '{v['VariantName']}': InitialInstanceCount must be at least 1."
                )

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._config(p["EndpointConfigName"])
        variants = [{"InitialVariantWeight": 1.0, **v} for v in row.spec["ProductionVariants"]]
        out = {k: v for k, v in row.spec.items() if k not in ("EndpointConfigName",)}
        out["ProductionVariants"] = variants
        return {"EndpointConfigName": row.name, "EndpointConfigArn": row.arn, **out,
                "CreationTime": ts(row.creation_time)}

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = filter_and_sort(
            self.store.list_resources(t.endpoint_configs), p, name=lambda r: r.name,
            created=lambda r: r.creation_time,
        )
        chunk, token = page(rows, p)
        out: dict[str, Any] = {"EndpointConfigs": [
            {"EndpointConfigName": r.name, "EndpointConfigArn": r.arn,
             "CreationTime": ts(r.creation_time)}
            for r in chunk
        ]}
        if token:
            out["NextToken"] = token
        return out

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._config(p["EndpointConfigName"])
        self.store.delete_resource(t.endpoint_configs, row.name)
        self.store.delete_tags(row.arn)
        return {}

    def _config(self, name: str) -> Any:
        row = self.store.get_resource(t.endpoint_configs, name)
        if row is None:
            raise NotFoundError(
                f'Could not find endpoint configuration "{self.arns.endpoint_config(name)}".'
            )
        return row

    # -- endpoints ---------------------------------------------------------------------------

    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        config = self._config(p["EndpointConfigName"])
        arn = self.arns.endpoint(name)
        now = self.clock.now()
        row = EndpointRow(
            name=name, arn=arn, config_name=config.name, pending_config_name=None,
            status="Creating", failure_reason=None,
            variants=self._variants_with_images(config.spec), creation_time=now,
            last_modified_time=now,
        )
        if not self.store.insert_endpoint(row):
            raise AlreadyExistsError(f'Cannot create already existing endpoint "{arn}".')
        self.store.put_tags(arn, p.get("Tags") or [])
        if self.async_endpoints is not None:
            self.async_endpoints.created(name, config.spec.get("AsyncInferenceConfig"))
        self.on_change(name)
        return {"EndpointArn": arn}

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._endpoint(p["EndpointName"])
        out: dict[str, Any] = {
            "EndpointName": row.name,
            "EndpointArn": row.arn,
            "EndpointConfigName": row.config_name,
            "ProductionVariants": [
                self._variant_summary(row, v) for v in row.variants
            ],
            "EndpointStatus": row.status,
            "CreationTime": ts(row.creation_time),
            "LastModifiedTime": ts(row.last_modified_time),
        }
        if row.failure_reason:
            out["FailureReason"] = row.failure_reason
        if self.async_endpoints is not None and self.async_endpoints.describe(row.name):
            out["AsyncInferenceConfig"] = self.async_endpoints.describe(row.name)
        if row.pending_config_name:
            out["PendingDeploymentSummary"] = self._pending_summary(row)
        return out

    def _pending_summary(self, row: EndpointRow) -> dict[str, Any]:
        """The fleet a blue/green UpdateEndpoint is bringing up, as AWS shows it: apart from
        ProductionVariants, which keep describing the fleet that serves until the switch."""
        variants = []
        for v in row.pending_variants:
            summary = self._variant_summary(row, v)
            if v.get("InstanceType"):
                summary["InstanceType"] = v["InstanceType"]
            variants.append(summary)
        return {
            "EndpointConfigName": row.pending_config_name,
            "ProductionVariants": variants,
            "StartTime": ts(row.last_modified_time),
        }

    def _variant_summary(self, row: EndpointRow, v: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "VariantName": v["VariantName"],
            "DeployedImages": [
                {"SpecifiedImage": image, "ResolvedImage": image,
                 "ResolutionTime": ts(row.creation_time)}
                for image in v.get("Images", [])
            ],
            "CurrentWeight": float(v["CurrentWeight"]),
            "DesiredWeight": float(v["DesiredWeight"]),
            "CurrentInstanceCount": int(v["CurrentInstanceCount"]),
            "DesiredInstanceCount": int(v["DesiredInstanceCount"]),
        }
        if v.get("RestartStatus"):  # crash-looping instances (control/restarts.py)
            status = v["RestartStatus"]
            out["VariantStatus"] = [{"Status": status["Status"],
                                     "StatusMessage": status["StatusMessage"],
                                     "StartTime": ts(status["StartTime"])}]
        elif row.status in ("Creating", "Updating") and v.get("StatusStartTime"):
            out["VariantStatus"] = [{
                "Status": "Creating" if row.status == "Creating" else "Updating",
                "StartTime": ts(v["StatusStartTime"]),
            }]
        kind = self.kinds.owner(v)
        return kind.describe_variant(out, v) if kind is not None else out

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = filter_and_sort(
            self.store.list_endpoints(), p, name=lambda r: r.name,
            created=lambda r: r.creation_time, modified=lambda r: r.last_modified_time,
            status=lambda r: r.status,
        )
        chunk, token = page(rows, p)
        out: dict[str, Any] = {"Endpoints": [
            {"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": ts(r.creation_time),
             "LastModifiedTime": ts(r.last_modified_time), "EndpointStatus": r.status}
            for r in chunk
        ]}
        if token:
            out["NextToken"] = token
        return out

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        config = self._config(p["EndpointConfigName"])
        new_variants = self._variants_with_images(config.spec)
        retain = bool(p.get("RetainAllVariantProperties"))
        excluded = {
            e["VariantPropertyType"] for e in p.get("ExcludeRetainedVariantProperties") or []
        }

        def change(row: EndpointRow) -> bool:
            self._check_mutable(row)
            self.kinds.check_update(row.variants, new_variants)
            if self.async_endpoints is not None:
                self.async_endpoints.check_update(row.name, config.spec)
            for v in new_variants:
                old = row.variant(v["VariantName"])
                if retain and old is not None:
                    if "DesiredInstanceCount" not in excluded:
                        v["DesiredInstanceCount"] = old["DesiredInstanceCount"]
                    if "DesiredWeight" not in excluded:
                        v["DesiredWeight"] = v["CurrentWeight"] = old["DesiredWeight"]
            row.status, row.failure_reason = "Updating", None
            row.pending_config_name = config.name
            row.last_modified_time = self.clock.now()
            # The new fleet's variants ride beside the old ones until traffic shifts.
            row.pending_variants = new_variants
            return True

        row = self._modify(p["EndpointName"], change)
        if self.async_endpoints is not None:
            self.async_endpoints.updated(row.name, config.spec.get("AsyncInferenceConfig"))
        return {"EndpointArn": row.arn}

    def update_endpoint_weights_and_capacities(self, p: dict[str, Any]) -> dict[str, Any]:
        def change(row: EndpointRow) -> bool:
            self._check_mutable(row)
            seen: set[str] = set()
            for wanted in p["DesiredWeightsAndCapacities"]:
                vname = wanted["VariantName"]
                if vname in seen:
                    raise ValidationError(f"The variant name(s) [{vname}] are repeated.")
                seen.add(vname)
                variant = row.variant(vname)
                if variant is None:
                    raise ValidationError(
                        f'The variant name(s) [{vname}] is/are not present in the endpoint '
                        f'"{row.arn}".'
                    )
                if "DesiredWeight" in wanted:
                    variant["DesiredWeight"] = float(wanted["DesiredWeight"])
                self.kinds.apply_capacity_update(variant, wanted)
                if "DesiredInstanceCount" in wanted:
                    variant["DesiredInstanceCount"] = int(wanted["DesiredInstanceCount"])
            row.status, row.failure_reason = "Updating", None
            row.last_modified_time = self.clock.now()
            return True

        row = self._modify(p["EndpointName"], change)
        return {"EndpointArn": row.arn}

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        def change(row: EndpointRow) -> bool:
            if row.status in IN_PROGRESS and row.status != "Deleting":
                raise ConflictError(f'Cannot update in-progress endpoint "{row.arn}".')
            row.status = "Deleting"
            row.last_modified_time = self.clock.now()
            return True

        row = self._modify(p["EndpointName"], change)
        self.store.delete_tags(row.arn)
        if self.async_endpoints is not None:
            self.async_endpoints.deleted(row.name)
        return {}

    def _modify(self, name: str, change: Callable[[EndpointRow], bool]) -> EndpointRow:
        row = self.store.modify_endpoint(name, change, bump=True)
        if row is None:
            raise NotFoundError(f'Could not find endpoint "{self.arns.endpoint(name)}".')
        self.on_change(row.name)
        return row

    def _variants_with_images(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        variants = variants_from_config(spec, self.kinds)
        for v in variants:
            model = self.store.get_resource(t.models, v["ModelName"])
            if model is None:
                raise ValidationError(
                    f'Could not find model "{self.arns.model(v["ModelName"])}" of variant '
                    f"{v['VariantName']}."
                )
            v["Images"] = [c["Image"] for c in model_containers(model.spec)]
        return variants

    def _endpoint(self, name: str) -> EndpointRow:
        row = self.store.get_endpoint(name)
        if row is None:
            raise NotFoundError(f'Could not find endpoint "{self.arns.endpoint(name)}".')
        return row

    def _check_mutable(self, row: EndpointRow) -> None:
        if row.status in IN_PROGRESS:
            raise ConflictError(f'Cannot update in-progress endpoint "{row.arn}".')
        if row.status == "Failed":
            raise ValidationError(f'Cannot update failed endpoint "{row.arn}".')

    # -- tags --------------------------------------------------------------------------------

    def add_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._check_taggable(arn)
        keys = {tag["Key"] for tag in self.store.get_tags(arn)} | {x["Key"] for x in p["Tags"]}
        if len(keys) > 50:
            raise ValidationError(f"Resource {arn} would have more than 50 tags.")
        self.store.put_tags(arn, p["Tags"])
        return {"Tags": p["Tags"]}

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._check_taggable(arn)
        chunk, token = page(self.store.get_tags(arn), p, default_max=50)
        out: dict[str, Any] = {"Tags": chunk}
        if token:
            out["NextToken"] = token
        return out

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        arn = p["ResourceArn"]
        self._check_taggable(arn)
        self.store.delete_tags(arn, p["TagKeys"])
        return {}

    def _check_taggable(self, arn: str) -> None:
        kind, _, name = arn.rpartition(":")[2].partition("/")
        lookup: Callable[[], object] | None = {
            "model": lambda: self.store.get_resource(t.models, name),
            "endpoint-config": lambda: self.store.get_resource(t.endpoint_configs, name),
            "endpoint": lambda: self.store.get_endpoint(name),
        }.get(kind)
        prefix = f"arn:aws:sagemaker:{self.arns.region}:{self.arns.account}:"
        if lookup is None or not arn.startswith(prefix) or lookup() is None:
            raise ValidationError(f"Resource {arn} does not exist or is not taggable.")


def model_containers(p: dict[str, Any]) -> list[dict[str, Any]]:
    has_primary, has_list = "PrimaryContainer" in p, bool(p.get("Containers"))
    if has_primary == has_list:
        raise ValidationError("Exactly one of PrimaryContainer or Containers must be specified.")
    containers = [p["PrimaryContainer"]] if has_primary else p["Containers"]
    if len(containers) > 1:
        raise ValidationError(
            "Multi-container models (inference pipelines, direct invocation) are not supported "
            "yet: give one container."
        )
    return containers


def check_container(c: dict[str, Any]) -> None:
    if not c.get("Image"):
        raise ValidationError("ContainerDefinition.Image is required.")
    resolve_runtime(c["Image"])
    if c.get("Mode") == "MultiModel":
        raise ValidationError("Multi-model containers (Mode=MultiModel) are not supported yet.")
    if not c.get("ModelDataUrl") and not c.get("ModelDataSource"):
        raise ValidationError("ContainerDefinition.ModelDataUrl is required by tideserve runtimes.")


def variants_from_config(spec: dict[str, Any], kinds: VariantKinds) -> list[dict[str, Any]]:
    return [kinds.variant_from_config(v) or instance_variant(v) for v in spec["ProductionVariants"]]


def instance_variant(v: dict[str, Any]) -> dict[str, Any]:
    """The variants-JSON entry of an instance-based production variant."""
    return {
        "VariantName": v["VariantName"],
        "ModelName": v["ModelName"],
        "InstanceType": v["InstanceType"],
        "DesiredInstanceCount": int(v["InitialInstanceCount"]),
        "CurrentInstanceCount": 0,
        "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
        "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
    }
