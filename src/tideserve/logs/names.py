"""Where SageMaker puts each producer's stdout/stderr (spec §5.1): one function per kind, so
the endpoint, serverless, transform and training code ask here rather than spell names.

    real-time / async / serverless   /aws/sagemaker/Endpoints/<EndpointName>
                                     stream <VariantName>/<instance-id>
    batch transform                  /aws/sagemaker/TransformJobs
                                     stream <job>/<instance-id>-<epoch seconds>
    training                         /aws/sagemaker/TrainingJobs
                                     stream <job>/algo-<n>-<epoch seconds>
    processing                       /aws/sagemaker/ProcessingJobs
                                     stream <job>/<hostname>-<epoch seconds>

(SageMaker developer guide, "Log groups and streams that Amazon SageMaker AI sends to Amazon
CloudWatch Logs"; pipelines add /<container>, async endpoints a /data-log stream.) The
SageMaker SDK finds job streams by their `<job>/` prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tideserve.errors import ValidationError

ENDPOINTS_PREFIX = "/aws/sagemaker/Endpoints/"
TRANSFORM_JOBS = "/aws/sagemaker/TransformJobs"
TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"
PROCESSING_JOBS = "/aws/sagemaker/ProcessingJobs"

_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]+")
MAX_NAME = 512


@dataclass(frozen=True)
class LogTarget:
    """A log stream in a log group: where one producer's lines go."""

    group: str
    stream: str


def endpoint_instance(endpoint: str, variant: str, instance_id: str) -> LogTarget:
    """A real-time, async or serverless instance's container output."""
    return LogTarget(ENDPOINTS_PREFIX + endpoint, f"{variant}/{instance_id}")


def endpoint_container(endpoint: str, variant: str, instance_id: str,
                       container: str) -> LogTarget:
    """One container of an inference pipeline (`container-1`, ... or its ContainerHostname)."""
    return LogTarget(ENDPOINTS_PREFIX + endpoint, f"{variant}/{instance_id}/{container}")


def async_data_log(endpoint: str, variant: str, instance_id: str) -> LogTarget:
    """An async endpoint's platform log (one line per request, carrying its inference id)."""
    return LogTarget(ENDPOINTS_PREFIX + endpoint, f"{variant}/{instance_id}/data-log")


def transform_job_instance(job: str, instance_id: str, started_epoch_s: int) -> LogTarget:
    return LogTarget(TRANSFORM_JOBS, f"{job}/{instance_id}-{started_epoch_s}")


def training_job_host(job: str, instance_number: int, started_epoch_s: int) -> LogTarget:
    """`instance_number` counts from 1 (algo-1 is the first host, as SageMaker names them)."""
    return LogTarget(TRAINING_JOBS, f"{job}/algo-{instance_number}-{started_epoch_s}")


def processing_job_host(job: str, host: str, started_epoch_s: int) -> LogTarget:
    return LogTarget(PROCESSING_JOBS, f"{job}/{host}-{started_epoch_s}")


def check_group_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME or not _GROUP_NAME.fullmatch(name):
        raise ValidationError(
            f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
            code="InvalidParameterException")
    return name


def check_stream_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME or ":" in name or "*" in name:
        raise ValidationError(
            f"1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [^:*]*",
            code="InvalidParameterException")
    return name


@dataclass(frozen=True)
class LogArns:
    region: str
    account: str

    def group(self, name: str) -> str:
        """The form without `:*` (logGroupArn; logGroupIdentifier accepts it)."""
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}"

    def stream(self, group: str, stream: str) -> str:
        return f"{self.group(group)}:log-stream:{stream}"

    def group_name_of(self, identifier: str) -> str:
        """A logGroupIdentifier (a name or either form of the group's ARN) -> the name."""
        if not identifier.startswith("arn:"):
            return identifier
        _, _, rest = identifier.partition(":log-group:")
        if not rest:
            raise ValidationError(f"Invalid logGroupIdentifier: {identifier}",
                                  code="InvalidParameterException")
        return rest[:-2] if rest.endswith(":*") else rest
