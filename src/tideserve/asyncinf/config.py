"""AsyncInferenceConfig (spec §2.3): validated once when an endpoint config is created, then
read as a typed, frozen AsyncConfig wherever it is used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tideserve.asyncinf.objects import parse_s3_uri
from tideserve.errors import ValidationError

# AWS lets SageMaker choose when ClientConfig is absent. We choose 4: two requests per vCPU of
# the common 2-vCPU types (ml.m5.large), so an instance's predict threads always have the next
# request waiting without a deep per-instance queue (the shared queue stays the place to wait).
DEFAULT_MAX_CONCURRENT_PER_INSTANCE = 4
RESPONSE_INCLUSION = ("SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC")


@dataclass(frozen=True)
class AsyncConfig:
    output_path: str  # S3OutputPath, an s3:// URI without a trailing slash
    failure_path: str  # S3FailurePath, or S3OutputPath when none was given
    success_topic: str | None  # SNS topic ARN
    error_topic: str | None
    include_response_in: tuple[str, ...]
    max_concurrent_per_instance: int  # requests in flight per instance

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> AsyncConfig:
        """From an AsyncInferenceConfig that check_async_config accepted."""
        out = spec["OutputConfig"]
        notes = out.get("NotificationConfig") or {}
        client = spec.get("ClientConfig") or {}
        output = out["S3OutputPath"].rstrip("/")
        return cls(
            output_path=output,
            failure_path=(out.get("S3FailurePath") or output).rstrip("/"),
            success_topic=notes.get("SuccessTopic") or None,
            error_topic=notes.get("ErrorTopic") or None,
            include_response_in=tuple(notes.get("IncludeInferenceResponseIn") or ()),
            max_concurrent_per_instance=int(
                client.get("MaxConcurrentInvocationsPerInstance")
                or DEFAULT_MAX_CONCURRENT_PER_INSTANCE
            ),
        )


def check_async_config(p: dict[str, Any]) -> None:
    """CreateEndpointConfig's rules for AsyncInferenceConfig beyond the botocore shape (which
    the wire layer already checked): output paths are s3:// URIs we can write, and async
    cannot be combined with serverless variants."""
    spec = p.get("AsyncInferenceConfig")
    if not spec:
        return
    if any(v.get("ServerlessConfig") for v in p["ProductionVariants"]):
        raise ValidationError(
            "AsyncInferenceConfig cannot be combined with ServerlessConfig: asynchronous "
            "inference needs instance-based variants."
        )
    out = spec.get("OutputConfig") or {}
    if not out.get("S3OutputPath"):
        raise ValidationError("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
    for field in ("S3OutputPath", "S3FailurePath"):
        if out.get(field):
            _check_path(field, out[field])
    notes = out.get("NotificationConfig") or {}
    for item in notes.get("IncludeInferenceResponseIn") or ():
        if item not in RESPONSE_INCLUSION:
            raise ValidationError(
                f"AsyncInferenceConfig.OutputConfig.NotificationConfig.IncludeInferenceResponseIn "
                f"value '{item}' must be one of {list(RESPONSE_INCLUSION)}."
            )


def _check_path(field: str, uri: str) -> None:
    try:
        parse_s3_uri(uri, allow_empty_key=True)
    except ValidationError as exc:
        raise ValidationError(
            f"AsyncInferenceConfig.OutputConfig.{field} '{uri}' is not valid: {exc.message}"
        ) from exc
