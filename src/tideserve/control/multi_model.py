"""Multi-model containers in the control plane: CreateModel's rules for `Mode: MultiModel`, and
what an instance of one is given to start (serving/multi_model.py reads it).

An MME variant is otherwise an instance-based variant like any other (control/instance_kind.py
converges it, Application Auto Scaling scales its DesiredInstanceCount); only its instances
and its routing differ, and both are chosen per instance (serving/routes.Backend.multi_model),
so no new variant kind is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tideserve.errors import ValidationError
from tideserve.serving import multi_model as mm

if TYPE_CHECKING:
    from tideserve.control.specs import EndpointConfigSpec

CACHE_SETTINGS = ("Enabled", "Disabled")  # MultiModelConfig.ModelCacheSetting [BC 1.44.8]


def check_multi_model_container(raw: Mapping[str, Any]) -> None:
    """A ContainerDefinition with Mode=MultiModel or a MultiModelConfig (spec §1.1)."""
    if raw.get("Mode") != "MultiModel":
        raise ValidationError(
            "MultiModelConfig is only valid for a container with Mode set to MultiModel."
        )
    if raw.get("ModelDataSource"):
        raise ValidationError(
            "ModelDataSource is not supported for multi-model containers (Mode=MultiModel): "
            "give ModelDataUrl, the S3 prefix the model archives are under."
        )
    url = raw.get("ModelDataUrl") or ""
    if not url:
        raise ValidationError(
            "ContainerDefinition.ModelDataUrl is required for Mode=MultiModel: the S3 prefix "
            "the model archives are under, e.g. s3://bucket/models/."
        )
    setting = (raw.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
    if setting not in CACHE_SETTINGS:
        raise ValidationError(
            f"MultiModelConfig.ModelCacheSetting {setting!r} is not one of "
            f"{', '.join(CACHE_SETTINGS)}."
        )


def is_multi_model(container: Mapping[str, Any]) -> bool:
    return container.get("Mode") == "MultiModel"


def model_is_multi_model(model_spec: Mapping[str, Any]) -> bool:
    containers = [model_spec["PrimaryContainer"]] if model_spec.get("PrimaryContainer") else (
        model_spec.get("Containers") or [])
    return any(is_multi_model(c) for c in containers)


def check_multi_model_variants(config: EndpointConfigSpec,
                               models: Mapping[str, Mapping[str, Any]]) -> None:
    """CreateEndpointConfig: a multi-model model runs on instance-based real-time variants
    only. Serverless excludes MME (spec base §3.4); InvokeEndpointAsync has no TargetModel
    member, so an async endpoint could never name a model (AWS's wording for both is not
    documented)."""
    for variant in config.production_variants:
        if not model_is_multi_model(models[variant.model_name]):
            continue
        if variant.serverless_config is not None:
            raise ValidationError(
                f"Variant '{variant.variant_name}': serverless endpoints do not support "
                f"multi-model models (model {variant.model_name} has Mode=MultiModel)."
            )
        if config.async_inference_config is not None:
            raise ValidationError(
                "AsyncInferenceConfig is not supported with multi-model models "
                f"(model {variant.model_name} has Mode=MultiModel): InvokeEndpointAsync "
                "cannot name a TargetModel."
            )


def instance_environment(container: Mapping[str, Any], source: str, object_root: Path | None,
                         storage_options: Mapping[str, Any] | None,
                         max_model_bytes: int) -> dict[str, str]:
    """What a multi-model instance is told on top of the container's Environment
    (serving/multi_model.py; the storage options leave its environment before any model code
    runs)."""
    setting = (container.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
    env = {
        mm.MULTI_MODEL_ENV: "true",
        mm.URL_ENV: container["ModelDataUrl"],
        mm.SOURCE_ENV: source,
        mm.MAX_MODEL_ENV: str(max_model_bytes),
        mm.CACHE_SETTING_ENV: setting,
    }
    if object_root is not None:
        env[mm.OBJECT_ROOT_ENV] = str(object_root)
    if storage_options:
        env[mm.STORAGE_OPTIONS_ENV] = json.dumps(dict(storage_options))
    return env
