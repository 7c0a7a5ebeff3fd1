"""TagResource, UntagResource and ListTagsForResource for scalable targets (the only AAS
resource that takes tags)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tideserve.autoscaling.storage import ScalingStorage
from tideserve.errors import LimitExceededError, NotFoundError, ValidationError

MAX_TAGS = 50  # per scalable target


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Key 1–128 and value 0–256 characters (the model checks those too); `aws:` is AWS's."""
    if not isinstance(tags, Mapping):
        raise ValidationError("Tags must be a map of tag keys to values")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError(f"Tag {key!r} must have a string key and value")
        if key.lower().startswith("aws:"):
            raise ValidationError(f"Tag keys starting with 'aws:' are reserved: {key}")
    if len(tags) > MAX_TAGS:
        raise _too_many("", len(tags))
    return dict(tags)


def _too_many(arn: str, count: int) -> LimitExceededError:
    return LimitExceededError(
        f"A scalable target can have at most {MAX_TAGS} tags; {count} were requested ({arn})",
        code="TooManyTagsException",
    )


class TaggingOperations:
    def __init__(self, store: ScalingStorage) -> None:
        self.store = store

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }

    def _check_exists(self, arn: str) -> None:
        if self.store.target_by_arn(arn) is None:
            raise NotFoundError(f"No scalable target found for ARN {arn}",
                                code="ResourceNotFoundException")

    def tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("ResourceARN"))
        tags = check_tags(params.get("Tags") or {})
        with self.store.lock:
            self._check_exists(arn)
            merged = {**self.store.tags(arn), **tags}
            if len(merged) > MAX_TAGS:
                raise _too_many(arn, len(merged))
            self.store.put_tags(arn, tags)
        return {}

    def untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("ResourceARN"))
        with self.store.lock:
            self._check_exists(arn)
            self.store.delete_tags(arn, list(params.get("TagKeys") or []))
        return {}

    def list_tags_for_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("ResourceARN"))
        self._check_exists(arn)
        return {"Tags": self.store.tags(arn)}
