"""Where SageMaker puts each producer's stdout/stderr (spec §5.1): one function per kind, so
the endpoint, serverless, transform and training code ask here rather than spell names.

    real-time / async / serverless   /aws/sagemaker/Endpoints/<EndpointName>
                                     stream <VariantName>/<instance-id>
    batch transform                  /aws/sagemaker/TransformJobs
                                     stream <job>/<instance-id>-<epoch seconds>
    training                         /aws/sagemaker/TrainingJobs
                                     stream <job>/algo-<n>-<epoch seconds>

AWS documents the stream prefixes (`<job>/`) that the SageMaker SDK relies on; the suffixes of
job streams are its examples' form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tideserve.errors import ValidationError

ENDPOINTS_PREFIX = "/aws/sagemaker/Endpoints/"
TRANSFORM_JOBS = "/aws/sagemaker/TransformJobs"
TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"

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


def transform_job_instance(job: str, instance_id: str, started_epoch_s: int) -> LogTarget:
    return LogTarget(TRANSFORM_JOBS, f"{job}/{instance_id}-{started_epoch_s}")


def training_job_host(job: str, instance_number: int, started_epoch_s: int) -> LogTarget:
    """`instance_number` counts from 1 (algo-1 is the first host, as SageMaker names them)."""
    return LogTarget(TRAINING_JOBS, f"{job}/algo-{instance_number}-{started_epoch_s}")


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
