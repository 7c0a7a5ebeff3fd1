"""Calling tideserve's own services in-process, as a resource provider does: the same handler
the API registry holds, after the same shape validation a wire request passes. Template values
are coerced to the shape's types first, as CloudFormation does (`"1"` for an integer)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Protocol

from botocore.model import Shape

from tideserve.api import validation
from tideserve.api.rpc import OperationRegistry, authorize_as_caller
from tideserve.api.shapes import find_operation, rpc_model
from tideserve.errors import ValidationError


class Services(Protocol):
    async def call(self, service: str, operation: str, params: dict[str, Any]
                   ) -> dict[str, Any]: ...


class RegistryServices:
    """Services backed by the server's OperationRegistry (signing names as keys)."""

    def __init__(self, registry: OperationRegistry) -> None:
        self.registry = registry

    async def call(self, service: str, operation: str, params: dict[str, Any]
                   ) -> dict[str, Any]:
        registration = self.registry.lookup(service, operation)
        model = find_operation(rpc_model(service), operation)
        if registration is None or model is None or registration.with_caller:
            raise ValidationError(f"{service}:{operation} is not available to stacks")
        params = coerce(model.input_shape, params) if model.input_shape is not None else params
        validation.check(model.input_shape, params)
        # With the stack's caller's permissions, as CloudFormation without a service role.
        await asyncio.to_thread(authorize_as_caller, service, operation, params)
        if registration.is_async:
            result = await registration.handler(params)  # type: ignore[misc]
        else:
            result = await asyncio.to_thread(registration.handler, params)
        if inspect.isawaitable(result):
            result = await result
        return result or {}


def coerce(shape: Shape, value: Any) -> Any:
    """`value` with strings turned into the numbers and booleans its shape wants."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: coerce(members[k], v) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [coerce(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: coerce(shape.value, v) for k, v in value.items()}
    if isinstance(value, str):
        try:
            if kind in ("integer", "long"):
                return int(value)
            if kind in ("double", "float"):
                return float(value)
        except ValueError:
            return value
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if kind == "string" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "string" and isinstance(value, int | float):
        return str(value)
    return value
