"""AddTags, ListTags, DeleteTags on models, endpoint configs and endpoints, and on the ARN
kinds other packages register (`taggable`: training-job and transform-job, wired in
server.py, so the tags CreateTrainingJob/CreateTransformJob stored -- the ones Cost Explorer
reads -- are the ones this API lists and edits)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from tideserve.control import tables as t
from tideserve.control.listing import ListQuery
from tideserve.control.plane import Plane
from tideserve.control.specs import Tag
from tideserve.control.store import Transaction
from tideserve.errors import ValidationError

MAX_TAGS = 50  # per resource


class TagOps:
    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        # ARN resource kind -> whether a resource of that name exists (e.g. "training-job").
        self.taggable: dict[str, Callable[[str], bool]] = {}

    def add(self, arn: str, tags: tuple[Tag, ...]) -> dict[str, Any]:
        # One transaction, the resource's row locked: two AddTags at once cannot together
        # pass the limit.
        with self.plane.store.begin() as tx:
            self._check_taggable(tx, arn, for_update=True)
            keys = {tag["Key"] for tag in tx.tags(arn)} | {tag.key for tag in tags}
            if len(keys) > MAX_TAGS:
                raise ValidationError(f"Resource {arn} would have more than {MAX_TAGS} tags.")
            tx.put_tags(arn, [tag.to_wire() for tag in tags])
        return {"Tags": [tag.to_wire() for tag in tags]}

    def list_page(self, arn: str, query: ListQuery) -> dict[str, Any]:
        with self.plane.store.read() as tx:
            self._check_taggable(tx, arn)
            tags = tx.tags(arn)
        return query.response("Tags", tags, lambda tag: tag, default_max=MAX_TAGS)

    def delete(self, arn: str, keys: list[str]) -> dict[str, Any]:
        with self.plane.store.begin() as tx:
            self._check_taggable(tx, arn, for_update=True)
            tx.delete_tags(arn, keys)
        return {}

    def _check_taggable(self, tx: Transaction, arn: str, *, for_update: bool = False) -> None:
        kind, _, name = arn.rpartition(":")[2].partition("/")
        lookup: Callable[[], object] | None = {
            "model": lambda: tx.resource(t.models, name, for_update=for_update),
            "endpoint-config": lambda: tx.resource(t.endpoint_configs, name, for_update=for_update),
            "endpoint": lambda: tx.endpoint(name, for_update=for_update),
        }.get(kind)
        if lookup is None and kind in self.taggable:
            lookup = partial(_found, self.taggable[kind], name)
        arns = self.plane.arns
        prefix = f"arn:aws:sagemaker:{arns.region}:{arns.account}:"
        if lookup is None or not arn.startswith(prefix) or lookup() is None:
            raise ValidationError(f"Resource {arn} does not exist or is not taggable.")


def _found(exists: Callable[[str], bool], name: str) -> object:
    return True if exists(name) else None
