"""The SageMaker hosting control plane: one facade over the operations by resource.

Each handler takes the operation's input as botocore's model names it (already checked against
the shape at the edge), parses it once into a frozen spec (control/specs.py) and hands it to
the resource's operations, which return its output (the endpoint requests' specs are in
control/endpoint_specs.py, List* members in listing.ListQuery):

    service_models.py     CreateModel DescribeModel ListModels DeleteModel
    service_configs.py    CreateEndpointConfig DescribeEndpointConfig ListEndpointConfigs
                          DeleteEndpointConfig
    service_endpoints.py  CreateEndpoint DescribeEndpoint ListEndpoints UpdateEndpoint
                          UpdateEndpointWeightsAndCapacities DeleteEndpoint
    service_tags.py       AddTags ListTags DeleteTags
    lineage.py            the endpoints' lineage contexts (registered beside these)

They record desired state and wake the controller; they never start or stop an instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.clock import Clock
from tideserve.control.endpoint_specs import (
    EndpointSpec,
    UpdateEndpointSpec,
    WeightsAndCapacitiesSpec,
)
from tideserve.control.kinds import VariantKinds
from tideserve.control.listing import ListQuery
from tideserve.control.names import Arns
from tideserve.control.plane import IN_PROGRESS, Plane, ts
from tideserve.control.service_configs import EndpointConfigOps
from tideserve.control.service_endpoints import EndpointOps
from tideserve.control.service_models import ModelOps
from tideserve.control.service_tags import TagOps
from tideserve.control.specs import ModelSpec, Tag, parse_endpoint_config
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog

__all__ = ["IN_PROGRESS", "SageMakerService", "ts"]

Operation = Callable[[dict[str, Any]], dict[str, Any]]


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
        # kinds: variant kinds other than instance-based
        self.plane = Plane(store, arns, catalog, clock, kinds or VariantKinds(), on_change)
        self.models = ModelOps(self.plane)
        self.configs = EndpointConfigOps(self.plane)
        self.endpoints = EndpointOps(self.plane)
        self.tags = TagOps(self.plane)

    # What other parts of the control plane read (capacity.py, server.py, tests).
    @property
    def store(self) -> ControlStore:
        return self.plane.store

    @property
    def arns(self) -> Arns:
        return self.plane.arns

    @property
    def catalog(self) -> Catalog:
        return self.plane.catalog

    @property
    def clock(self) -> Clock:
        return self.plane.clock

    @property
    def kinds(self) -> VariantKinds:
        return self.plane.kinds

    @property
    def on_change(self) -> Callable[[str], None]:
        return self.plane.on_change

    @property
    def async_endpoints(self) -> AsyncEndpoints | None:
        return self.plane.async_endpoints

    @async_endpoints.setter
    def async_endpoints(self, endpoints: AsyncEndpoints | None) -> None:
        self.plane.async_endpoints = endpoints  # server.py, once async inference is wired

    def operations(self) -> dict[str, Operation]:
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
        return self.models.create(ModelSpec.parse(p))

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.models.describe(p["ModelName"])

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.models.list_page(ListQuery.parse(p))

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.models.delete(p["ModelName"])

    # -- endpoint configs --------------------------------------------------------------------

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.configs.create(parse_endpoint_config(p))

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.configs.describe(p["EndpointConfigName"])

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.configs.list_page(ListQuery.parse(p))

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.configs.delete(p["EndpointConfigName"])

    # -- endpoints ---------------------------------------------------------------------------

    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.create(EndpointSpec.parse(p))

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.describe(p["EndpointName"])

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.list_page(ListQuery.parse(p))

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.update(UpdateEndpointSpec.parse(p))

    def update_endpoint_weights_and_capacities(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.update_weights_and_capacities(WeightsAndCapacitiesSpec.parse(p))

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.endpoints.delete(p["EndpointName"])

    # -- tags --------------------------------------------------------------------------------

    def add_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.tags.add(p["ResourceArn"], Tag.parse_all(p["Tags"]))

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.tags.list_page(p["ResourceArn"], ListQuery.parse(p))

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.tags.delete(p["ResourceArn"], list(p["TagKeys"]))
