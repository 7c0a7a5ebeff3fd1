"""The router's multi-model half: the TargetModel rules of InvokeEndpoint, where a request goes
(serving/affinity.py), what an instance's refusal means to the client, and the MME metrics
read from an instance's answer (spec §1.2, §1.5).

AWS's texts where they are known (spec §1.2, third-party reports); where AWS is silent:
a TargetModel that is not a clean relative path (`../x`, `/abs`, `a//b`) is refused before any
download with a ValidationError naming the rule, rather than AWS's "Failed to download".
"""

from __future__ import annotations

import uuid

from tideserve.errors import TideserveError, ValidationError
from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serving.instance_client import Reply
from tideserve.serving.model_cache import check_target_model
from tideserve.serving.routes import Backend, RouteTable, VariantRoute

TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
Dimensions = tuple[tuple[str, str], ...]


class TargetModelNotSupported(ValidationError):
    """TargetModel on an endpoint that is not multi-model; its body carries this ErrorCode."""

    error_code = "TARGET_MODEL_HEADER_NOT_SUPPORTED"


def is_multi_model(variant: VariantRoute) -> bool:
    return bool(variant.backends) and variant.backends[0].multi_model


def target_model(headers: dict[str, str], endpoint: str, variant: VariantRoute) -> str | None:
    """The request's TargetModel, checked against the variant's kind; None when the variant is
    single-model and the request names none."""
    target = headers.get(TARGET_MODEL_HEADER)
    if not is_multi_model(variant):
        if target is not None:
            raise TargetModelNotSupported(
                f"Endpoint {endpoint} is not a multi-model endpoint and does not support "
                "target model header."
            )
        return None
    if target is None:
        raise ValidationError(
            f"Request {uuid.uuid4()} is missing a target model header. Endpoint {endpoint} is "
            "a multi-model endpoint: name the model archive to invoke, relative to the model's "
            "ModelDataUrl, with TargetModel (X-Amzn-SageMaker-Target-Model)."
        )
    why = check_target_model(target)
    if why is not None:
        raise ValidationError(
            f"TargetModel {target!r} is not a valid path relative to the model's "
            f"ModelDataUrl: {why}."
        )
    return target


def refusal(reply: Reply) -> TideserveError | None:
    """A multi-model instance's refusal (X-Tideserve-Error) as the client's error; None when
    the instance answered (a model's own non-2xx is a ModelError, as on any endpoint)."""
    code = reply.error_type
    if code is None or code == "ModelError":
        return None
    message = reply.body.decode("utf-8", "replace")
    if code == "ValidationError":
        return ValidationError(message)
    return TideserveError(message, code=code)  # ModelNotReadyException: 429


def record(metrics: MetricAggregator, dims: Dimensions, target: str, backend: Backend,
           reply: Reply, model_us: float) -> None:
    """The MME metrics of one answered invocation."""
    # Canonical dimensions are sorted by name: EndpointName, TargetModel, VariantName.
    per_model = tuple(sorted((*dims, (catalogue.TARGET_MODEL, target))))
    metrics.put_many(per_model, (
        (catalogue.TARGET_MODEL_INVOCATIONS, 1.0),
        (catalogue.TARGET_MODEL_LATENCY, model_us),
    ))
    if reply.multi_model is None:
        return
    stats = _parse(reply.multi_model)
    backend.loaded_models = int(stats.get("loaded", "0") or 0)
    hit = stats.get("hit") == "1"
    values = [(catalogue.MODEL_CACHE_HIT, 1.0 if hit else 0.0)]
    if not hit:
        values.append((catalogue.MODEL_LOADING_WAIT_TIME, _us(stats, "wait")))
    if _us(stats, "download") > 0:
        values.append((catalogue.MODEL_DOWNLOADING_TIME, _us(stats, "download")))
    if _us(stats, "load") > 0:
        values.append((catalogue.MODEL_LOADING_TIME, _us(stats, "load")))
    for unload in filter(None, stats.get("unload", "").split(",")):
        values.append((catalogue.MODEL_UNLOADING_TIME, float(unload)))
    metrics.put_many(dims, values)


def wait_us(reply: Reply) -> float:
    """How long the request waited on a download and load (0 on a hit)."""
    if reply.multi_model is None:
        return 0.0
    return _us(_parse(reply.multi_model), "wait")


def publish_loaded_model_counts(routes: RouteTable, metrics: MetricAggregator) -> None:
    """LoadedModelCount: one datapoint per multi-model instance per period."""
    for route in list(routes.endpoints.values()):
        for variant in route.variants:
            if not is_multi_model(variant):
                continue
            dims = (("EndpointName", route.name), ("VariantName", variant.name))
            for backend in variant.backends:
                metrics.put(catalogue.LOADED_MODEL_COUNT, dims, float(backend.loaded_models))


def _parse(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, _, value = part.partition("=")
        out[name.strip()] = value.strip()
    return out


def _us(stats: dict[str, str], name: str) -> float:
    try:
        return float(stats.get(name) or 0.0)
    except ValueError:
        return 0.0
