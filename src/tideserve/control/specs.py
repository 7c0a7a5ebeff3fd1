"""The hosting requests as typed, frozen values: each parsed once at the edge of its operation
(with AWS's error wording), and every operation then reads fields, not dicts.

Field names are botocore's (sagemaker 2017-07-24) in snake case. A spec keeps the request as
it came (`wire`, less Tags): that is what the models and endpoint_configs tables store and
Describe* echoes, so rows written before these types existed load unchanged (`load`).

The wire layer has already checked the botocore shape (types, required members); `parse`
adds tideserve's and AWS's semantic rules. A kind of variant other than instance-based
(control/kinds.py) checks its own fields of an EndpointConfigSpec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tideserve.asyncinf.config import AsyncConfig, check_async_config
from tideserve.control.multi_container import DIRECT, SERIAL, check_multi_container
from tideserve.control.multi_model import check_multi_model_container
from tideserve.cost.catalog import Catalog
from tideserve.errors import ValidationError
from tideserve.serving.images import resolve_runtime


@dataclass(frozen=True)
class Tag:
    key: str
    value: str

    @classmethod
    def parse_all(cls, raw: Sequence[Mapping[str, Any]] | None) -> tuple[Tag, ...]:
        return tuple(cls(t["Key"], t.get("Value", "")) for t in raw or ())

    def to_wire(self) -> dict[str, str]:
        return {"Key": self.key, "Value": self.value}


def _without_tags(p: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k != "Tags"}


# -- models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerSpec:
    """A ContainerDefinition: the image names a tideserve runtime (serving/images.py)."""

    image: str
    model_data_url: str | None
    model_data_source: Mapping[str, Any] | None
    mode: str | None  # SingleModel (the default) or MultiModel
    environment: Mapping[str, str]
    # Names the container in a multi-container model (TargetContainerHostname, metrics'
    # ContainerName); None where the request left it out.
    container_hostname: str | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> ContainerSpec:
        return cls(
            image=raw.get("Image") or "",
            model_data_url=raw.get("ModelDataUrl") or None,
            model_data_source=raw.get("ModelDataSource") or None,
            mode=raw.get("Mode"),
            environment={str(k): str(v) for k, v in (raw.get("Environment") or {}).items()},
            container_hostname=raw.get("ContainerHostname") or None,
        )

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ContainerSpec:
        spec = cls.load(raw)
        if not spec.image:
            raise ValidationError("ContainerDefinition.Image is required.")
        resolve_runtime(spec.image)
        if spec.mode == "MultiModel" or raw.get("MultiModelConfig") is not None:
            check_multi_model_container(raw)
        if not spec.model_data_url and not spec.model_data_source:
            raise ValidationError(
                "ContainerDefinition.ModelDataUrl is required by tideserve runtimes."
            )
        return spec


@dataclass(frozen=True)
class ModelSpec:
    """CreateModel's input: one container (PrimaryContainer, or a Containers list of one), or
    a multi-container model (control/multi_container.py has its rules): a serial inference
    pipeline or containers invoked directly."""

    model_name: str
    containers: tuple[ContainerSpec, ...]
    execution_role_arn: str | None
    enable_network_isolation: bool
    tags: tuple[Tag, ...]
    wire: Mapping[str, Any]
    # {"Mode": "Serial" | "Direct"} as given; absent means Serial (AWS's default).
    inference_execution_config: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> ModelSpec:
        has_primary, has_list = "PrimaryContainer" in p, bool(p.get("Containers"))
        if has_primary == has_list:
            raise ValidationError(
                "Exactly one of PrimaryContainer or Containers must be specified."
            )
        raw = [p["PrimaryContainer"]] if has_primary else p["Containers"]
        spec = cls._of(p, tuple(ContainerSpec.parse(c) for c in raw),
                       Tag.parse_all(p.get("Tags")))
        check_multi_container(spec, has_primary)
        return spec

    @classmethod
    def load(cls, stored: Mapping[str, Any]) -> ModelSpec:
        """A models row's spec, as any version of tideserve stored it."""
        raw = [stored["PrimaryContainer"]] if stored.get("PrimaryContainer") else (
            stored.get("Containers") or [])
        return cls._of(stored, tuple(ContainerSpec.load(c) for c in raw), ())

    @classmethod
    def _of(cls, p: Mapping[str, Any], containers: tuple[ContainerSpec, ...],
            tags: tuple[Tag, ...]) -> ModelSpec:
        return cls(
            model_name=p["ModelName"], containers=containers,
            execution_role_arn=p.get("ExecutionRoleArn"),
            enable_network_isolation=bool(p.get("EnableNetworkIsolation")),
            tags=tags, wire=_without_tags(p),
            inference_execution_config=p.get("InferenceExecutionConfig") or None,
        )

    @property
    def images(self) -> list[str]:
        return [c.image for c in self.containers]

    @property
    def execution_mode(self) -> str | None:
        """Serial or Direct for a multi-container model; None for a single container (which
        runs as it always has, with no front)."""
        mode = (self.inference_execution_config or {}).get("Mode") or SERIAL
        if len(self.containers) > 1 or mode == DIRECT:
            return str(mode)
        return None

    @property
    def container_hostnames(self) -> tuple[str, ...]:
        """Each container's name: its ContainerHostname, or container-<position> (1-based)
        where a pipeline left them all out, as SageMaker names them in logs and metrics."""
        return tuple(c.container_hostname or f"container-{i}"
                     for i, c in enumerate(self.containers, 1))


# -- endpoint configs ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionVariantSpec:
    """A ProductionVariant: instance-based (InstanceType, InitialInstanceCount) or of a kind
    that claims it (ServerlessConfig, validated by that kind into its own typed value)."""

    variant_name: str
    model_name: str
    instance_type: str | None
    initial_instance_count: int | None
    initial_variant_weight: float  # AWS's default is 1.0
    serverless_config: Mapping[str, Any] | None
    wire: Mapping[str, Any]

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> ProductionVariantSpec:
        count = raw.get("InitialInstanceCount")
        return cls(
            variant_name=raw["VariantName"],
            model_name=raw.get("ModelName") or "",
            instance_type=raw.get("InstanceType") or None,
            initial_instance_count=None if count is None else int(count),
            initial_variant_weight=float(raw.get("InitialVariantWeight", 1.0)),
            serverless_config=raw.get("ServerlessConfig"),
            wire=dict(raw),
        )

    def check_instance_based(self, catalog: Catalog) -> None:
        name = self.variant_name
        if not self.model_name:
            raise ValidationError(f"Variant '{name}' must name a ModelName.")
        if not self.instance_type:
            raise ValidationError(f"Variant '{name}' must specify an InstanceType.")
        catalog.get(self.instance_type)
        if (self.initial_instance_count or 0) < 1:
            raise ValidationError(
                f"Variant '{name}': InitialInstanceCount must be at least 1."
            )


@dataclass(frozen=True)
class EndpointConfigSpec:
    endpoint_config_name: str
    production_variants: tuple[ProductionVariantSpec, ...]
    async_inference_config: Mapping[str, Any] | None  # as check_async_config accepted it
    data_capture_config: Mapping[str, Any] | None  # recorded and echoed, not acted on yet
    tags: tuple[Tag, ...]
    wire: Mapping[str, Any]

    @classmethod
    def load(cls, stored: Mapping[str, Any], tags: tuple[Tag, ...] = ()) -> EndpointConfigSpec:
        """An endpoint_configs row's spec, as any version of tideserve stored it."""
        return cls(
            endpoint_config_name=stored["EndpointConfigName"],
            production_variants=tuple(
                ProductionVariantSpec.load(v) for v in stored["ProductionVariants"]),
            async_inference_config=stored.get("AsyncInferenceConfig") or None,
            data_capture_config=stored.get("DataCaptureConfig") or None,
            tags=tags, wire=_without_tags(stored),
        )

    @property
    def async_config(self) -> AsyncConfig | None:
        if self.async_inference_config is None:
            return None
        return AsyncConfig.from_spec(dict(self.async_inference_config))

    @property
    def model_names(self) -> list[str]:
        return [v.model_name for v in self.production_variants]


def check_instance_variants(variants: Sequence[ProductionVariantSpec], catalog: Catalog) -> None:
    """CreateEndpointConfig's rules for instance-based variants."""
    seen: set[str] = set()
    for v in variants:
        if v.variant_name in seen:
            raise ValidationError(
                f"Variant names must be unique: '{v.variant_name}' appears more than once."
            )
        seen.add(v.variant_name)
        v.check_instance_based(catalog)


def parse_endpoint_config(p: Mapping[str, Any]) -> EndpointConfigSpec:
    """The parts every config shares; the variants' rules depend on their kind
    (service_configs.py asks the kinds)."""
    check_async_config(dict(p))
    return EndpointConfigSpec.load(p, Tag.parse_all(p.get("Tags")))
