"""What a resource type is to the stack engine: how to create, update and delete it, what Ref
and Fn::GetAtt return, and which property changes need a new physical resource.

`Provider` is the contract; the SageMaker, Application Auto Scaling, CloudWatch, S3 and CDK
providers live beside it (sagemaker_types.py, scaling_types.py, other_types.py)."""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tideserve.stacks.calls import Services

EVERY_PROPERTY = frozenset({"*"})


@dataclass(frozen=True)
class Made:
    """A physical resource: its id (what Ref returns) and its Fn::GetAtt attributes."""

    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResourceContext:
    services: Services
    stack_name: str
    logical_id: str
    region: str
    account: str
    poll_seconds: float = 0.5

    async def pause(self) -> None:
        await asyncio.sleep(self.poll_seconds)

    def generated_name(self, limit: int, lower: bool = False) -> str:
        """`<stack>-<LogicalId>-<12 random>`, the stack and logical parts cut to fit `limit`
        (CloudFormation's shape for names a template leaves out)."""
        alphabet = string.ascii_lowercase + string.digits if lower else (
            string.ascii_uppercase + string.digits)
        suffix = "".join(secrets.choice(alphabet) for _ in range(12))
        room = max(2, limit - len(suffix) - 2)
        stack, logical = self.stack_name[: room // 2], self.logical_id
        logical = logical[: room - len(stack)]
        name = f"{stack}-{logical}-{suffix}"
        return name.lower() if lower else name


class Provider:
    """A resource type. Subclasses set the class attributes and implement create/delete;
    update is only called for changes that need no replacement."""

    type_name = ""
    # The property holding the resource's physical name (a custom name blocks replacement).
    name_property: str | None = None
    # Properties whose change needs a new resource; EVERY_PROPERTY: all but `Tags`.
    replaced_by: frozenset[str] = frozenset()

    def needs_replacement(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
        if self.replaced_by == EVERY_PROPERTY:
            return bool(changed - {"Tags"})
        return bool(changed & self.replaced_by)

    def custom_name(self, props: Mapping[str, Any]) -> str | None:
        return props.get(self.name_property) if self.name_property else None

    def physical_name(self, ctx: ResourceContext, props: Mapping[str, Any], limit: int,
                      lower: bool = False) -> str:
        """The custom name the template gives, else one CloudFormation would generate."""
        return self.custom_name(props) or ctx.generated_name(limit, lower=lower)

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        raise NotImplementedError

    async def update(self, ctx: ResourceContext, current: Made, old: dict[str, Any],
                     new: dict[str, Any]) -> Made:
        return current  # only tags changed: tideserve keeps no tags for these types

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        raise NotImplementedError


def pick(props: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: props[name] for name in names if name in props}
