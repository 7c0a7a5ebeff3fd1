"""Adapters from the rest of tideserve to what cost reports read: an endpoint's tags from the
control store, and a variant's Invocations from the metric store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from tideserve.metrics import names
from tideserve.metrics.model import dimensions
from tideserve.metrics.store import MetricStore


class TagStore(Protocol):
    """What cost needs of the control store (control.store.ControlStore is one)."""

    def get_tags(self, arn: str) -> Sequence[Mapping[str, Any]]: ...


def tags_from_store(store: TagStore) -> Callable[[str], Mapping[str, str]]:
    """endpoint ARN -> {key: value}, as AddTags left them."""

    def tags_for(arn: str) -> Mapping[str, str]:
        return {t["Key"]: t["Value"] for t in store.get_tags(arn)}

    return tags_for


def invocations_from_metrics(metrics: MetricStore) -> Callable[[str, str, float, float], float]:
    """(endpoint, variant, start, end) -> the AWS/SageMaker Invocations Sum of the stored
    periods that start in [start, end). Periods are 60 s (or the compressed period), so they
    nest inside report hours and days; the open period is not stored yet and not counted."""

    def invocations(endpoint: str, variant: str, start: float, end: float) -> float:
        dims = dimensions(EndpointName=endpoint, VariantName=variant)
        points = metrics.datapoints(
            names.SAGEMAKER, names.INVOCATIONS, dims, start, end, with_sketch=False
        )
        return sum(p.sum for p in points)

    return invocations
