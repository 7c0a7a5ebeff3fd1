"""CreateTransformJob's input, checked once into a frozen TransformJobSpec.

botocore's shape checks (types, lengths, patterns, enums) run at the edge before this; what is
left is what the model cannot say: the data source types transform accepts, the payload limits
(MaxPayloadInMB <= 100 and MaxConcurrentTransforms x MaxPayloadInMB <= 100, AWS's documented
rule), the split types we implement, and the DataProcessing filters' syntax.

Defaults (AWS's documented ones): MaxPayloadInMB 6, MaxConcurrentTransforms 1 and BatchStrategy
MultiRecord, each unless the container's GET /execution-parameters says otherwise (runner.py
resolves them: request > execution-parameters > default); InvocationsTimeoutInSeconds 600,
InvocationsMaxRetries 3; AssembleWith None; SplitType None; CompressionType None.

Beyond AWS, clearly named: Environment {"TIDESERVE_SPOT": "true"} runs the job's instances on
the fleet's spot capacity (runner.py re-queues a reclaimed instance's unfinished objects). An
Environment entry because boto3 validates request shapes before sending (an extra member would
never reach us), Environment is part of the job's immutable request (DescribeTransformJob shows
it, unlike a tag, which AddTags/DeleteTags could change mid-job), and on AWS the same request
only sets a variable the container ignores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.asyncinf.objects import parse_s3_uri
from tideserve.errors import ValidationError
from tideserve.transform.filters import JsonPath

DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_MAX_CONCURRENT = 1
DEFAULT_STRATEGY = "MultiRecord"
MAX_PAYLOAD_LIMIT_MB = 100  # for MaxPayloadInMB, and for MaxConcurrentTransforms x it
DEFAULT_INVOCATION_TIMEOUT = 600  # seconds
DEFAULT_INVOCATION_RETRIES = 3
DATA_TYPES = ("S3Prefix", "ManifestFile")
SPLIT_TYPES = ("None", "Line")
SPOT_ENVIRONMENT = "TIDESERVE_SPOT"  # "true": the job runs on spot capacity (tideserve's own)


@dataclass(frozen=True)
class TransformJobSpec:
    name: str
    model_name: str
    data_type: str  # S3Prefix | ManifestFile
    input_uri: str
    content_type: str | None
    gzip: bool
    split_line: bool  # SplitType Line (else None: the whole object is one record)
    strategy: str | None  # SingleRecord | MultiRecord; None: execution-parameters or default
    max_payload_mb: int | None
    max_concurrent: int | None  # per instance
    output_path: str
    accept: str | None
    assemble_line: bool  # AssembleWith Line (else None: responses concatenated)
    instance_type: str
    instance_count: int
    environment: dict[str, str]
    invocation_timeout: float  # seconds, per attempt
    invocation_retries: int
    input_filter: JsonPath | None
    output_filter: JsonPath | None
    join_input: bool
    spot: bool = False  # Environment TIDESERVE_SPOT=true

    @property
    def per_record(self) -> bool:
        """Whether records must be handled one by one (filters, joins) rather than as spans."""
        return self.input_filter is not None or self.output_filter is not None or self.join_input

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> TransformJobSpec:
        source = p["TransformInput"]["DataSource"]["S3DataSource"]
        data_type = source["S3DataType"]
        if data_type not in DATA_TYPES:
            raise ValidationError(
                f"Value '{data_type}' at 'transformInput.dataSource.s3DataSource.s3DataType' is "
                f"not supported for transform jobs: use one of {', '.join(DATA_TYPES)}.")
        parse_s3_uri(source["S3Uri"], allow_empty_key=True)
        tin = p["TransformInput"]
        split = tin.get("SplitType") or "None"
        if split not in SPLIT_TYPES:
            raise ValidationError(
                f"SplitType {split} is not supported by tideserve's batch transform; use None "
                "or Line.")
        out = p["TransformOutput"]
        parse_s3_uri(out["S3OutputPath"], allow_empty_key=True)
        payload, concurrent = p.get("MaxPayloadInMB"), p.get("MaxConcurrentTransforms")
        _check_payload(payload, concurrent)
        client = p.get("ModelClientConfig") or {}
        processing = p.get("DataProcessing") or {}
        resources = p["TransformResources"]
        environment = {str(k): str(v) for k, v in (p.get("Environment") or {}).items()}
        return cls(
            name=p["TransformJobName"], model_name=p["ModelName"], data_type=data_type,
            input_uri=source["S3Uri"], content_type=tin.get("ContentType"),
            gzip=(tin.get("CompressionType") or "None") == "Gzip", split_line=split == "Line",
            strategy=p.get("BatchStrategy"), max_payload_mb=payload or None,
            max_concurrent=concurrent or None, output_path=out["S3OutputPath"],
            accept=out.get("Accept"), assemble_line=out.get("AssembleWith") == "Line",
            instance_type=resources["InstanceType"],
            instance_count=int(resources["InstanceCount"]),
            environment=environment, spot=_spot(environment),
            invocation_timeout=float(client.get("InvocationsTimeoutInSeconds")
                                     or DEFAULT_INVOCATION_TIMEOUT),
            invocation_retries=int(client.get("InvocationsMaxRetries",
                                              DEFAULT_INVOCATION_RETRIES)),
            input_filter=_filter(processing, "InputFilter"),
            output_filter=_filter(processing, "OutputFilter"),
            join_input=processing.get("JoinSource") == "Input",
        )


def _spot(environment: Mapping[str, str]) -> bool:
    value = environment.get(SPOT_ENVIRONMENT, "false").strip().lower()
    if value not in ("true", "false"):
        raise ValidationError(f"Environment {SPOT_ENVIRONMENT} '{environment[SPOT_ENVIRONMENT]}'"
                              " is not valid: use true (run on spot capacity) or false.")
    return value == "true"


def _check_payload(payload: int | None, concurrent: int | None) -> None:
    if payload == 0:
        raise ValidationError(
            "MaxPayloadInMB 0 (unlimited, HTTP chunked encoding) is not supported by "
            "tideserve's batch transform; set 1 to 100.")
    if payload is not None and payload > MAX_PAYLOAD_LIMIT_MB:
        raise ValidationError(
            f"MaxPayloadInMB {payload} is over the limit: it cannot be greater than "
            f"{MAX_PAYLOAD_LIMIT_MB} MB.")
    if payload and concurrent and payload * concurrent > MAX_PAYLOAD_LIMIT_MB:
        raise ValidationError(
            f"MaxConcurrentTransforms ({concurrent}) x MaxPayloadInMB ({payload}) = "
            f"{concurrent * payload} MB is over the limit of {MAX_PAYLOAD_LIMIT_MB} MB.")


def _filter(processing: Mapping[str, Any], field: str) -> JsonPath | None:
    text = processing.get(field)
    if text is None or text == "$":
        return None  # "$" selects the whole record: the default, and no work
    try:
        return JsonPath.parse(text)
    except ValueError as exc:
        raise ValidationError(f"DataProcessing.{field} '{text}' is not a valid JSONPath "
                              f"expression: {exc}.") from None


def effective_parameters(spec: TransformJobSpec,
                         container: Mapping[str, Any] | None) -> tuple[str, int, int]:
    """(BatchStrategy, MaxPayloadInMB, MaxConcurrentTransforms): the request's, else the
    container's GET /execution-parameters answer, else AWS's defaults (spec §3.2)."""
    got = container or {}
    strategy = spec.strategy or {"SINGLE_RECORD": "SingleRecord", "MULTI_RECORD": "MultiRecord"
                                 }.get(str(got.get("BatchStrategy")), DEFAULT_STRATEGY)
    payload = spec.max_payload_mb or _positive(got.get("MaxPayloadInMB")) or DEFAULT_MAX_PAYLOAD_MB
    payload = min(payload, MAX_PAYLOAD_LIMIT_MB)
    concurrent = (spec.max_concurrent or _positive(got.get("MaxConcurrentTransforms"))
                  or DEFAULT_MAX_CONCURRENT)
    concurrent = max(1, min(concurrent, MAX_PAYLOAD_LIMIT_MB // payload))
    return strategy, payload, concurrent


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None
