"""CreateModel's rules for models of several containers (spec hosting-jobs §2.1).

A model with a Containers list of two to fifteen runs them on every instance of its variant,
either as a serial inference pipeline (InferenceExecutionConfig.Mode Serial, the default: each
container's answer is the next one's request) or for direct invocation (Mode Direct:
InvokeEndpoint's TargetContainerHostname picks one). AWS documents the rules but not their
error texts; ours name the field, the value and what is allowed.

Decisions where AWS is silent: duplicate hostnames are refused (compared ignoring case, as
hostnames are); Direct needs at least two containers (AWS's guide: "include more than one
container"); a multi-model container inside a multi-container model is refused (tideserve
serves multi-model containers on their own only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tideserve.errors import ValidationError

if TYPE_CHECKING:
    from tideserve.control.specs import ModelSpec

SERIAL = "Serial"
DIRECT = "Direct"
MAX_CONTAINERS = 15  # botocore's ContainerDefinitionList max, and the guide's limit
MAX_ENVIRONMENT_BYTES = 32 * 1024  # all containers' Environment maps together


def check_multi_container(spec: ModelSpec, primary: bool) -> None:
    """Raise ValidationError for a combination of containers AWS refuses."""
    _check_environment_size(spec)
    mode = spec.execution_mode
    if mode is None:
        return
    count = len(spec.containers)
    if count > MAX_CONTAINERS:
        raise ValidationError(
            f"A model holds at most {MAX_CONTAINERS} containers; Containers has {count}."
        )
    if mode == DIRECT and (primary or count < 2):
        raise ValidationError(
            "InferenceExecutionConfig.Mode Direct needs a Containers list of 2 to "
            f"{MAX_CONTAINERS} containers, each with a ContainerHostname."
        )
    for i, container in enumerate(spec.containers, 1):
        if container.mode == "MultiModel":
            raise ValidationError(
                f"Containers.{i} has Mode MultiModel: tideserve serves a multi-model container "
                "only as a model's single container, not in an inference pipeline or with "
                "direct invocation."
            )
    _check_hostnames(spec, mode)


def _check_hostnames(spec: ModelSpec, mode: str) -> None:
    missing = [i for i, c in enumerate(spec.containers, 1) if not c.container_hostname]
    if missing and mode == DIRECT:
        raise ValidationError(
            "ContainerHostname is required for every container of a model with "
            f"InferenceExecutionConfig.Mode Direct; Containers.{missing[0]} has none."
        )
    if missing and len(missing) < len(spec.containers):
        raise ValidationError(
            "If ContainerHostname is specified for any container of an inference pipeline, "
            f"it must be specified for every container; Containers.{missing[0]} has none."
        )
    seen: set[str] = set()
    for name in spec.container_hostnames:
        if name.lower() in seen:
            raise ValidationError(
                f"ContainerHostname '{name}' appears more than once in Containers: each "
                "container of a model needs a name of its own."
            )
        seen.add(name.lower())


def _check_environment_size(spec: ModelSpec) -> None:
    size = sum(len(k.encode()) + len(v.encode())
               for c in spec.containers for k, v in c.environment.items())
    if size > MAX_ENVIRONMENT_BYTES:
        raise ValidationError(
            f"The Environment maps of the model's containers hold {size} bytes of keys and "
            f"values together; at most {MAX_ENVIRONMENT_BYTES} (32 KB) are allowed."
        )
