"""Metric names, units and namespaces that SageMaker publishes (spec §5.1–5.3), so publishers
and consumers spell them once (metrics/catalogue.py says who publishes what).

Units are CloudWatch's StandardUnit strings; "None" is CloudWatch's word for a plain count.
"""

from __future__ import annotations

from typing import Final

# Namespaces.
SAGEMAKER: Final = "AWS/SageMaker"  # invocation metrics, dims {EndpointName, VariantName}
ENDPOINT_INSTANCES: Final = "/aws/sagemaker/Endpoints"  # instance metrics, same dims

# Dimension names.
ENDPOINT_NAME: Final = "EndpointName"
VARIANT_NAME: Final = "VariantName"
CONTAINER_NAME: Final = "ContainerName"  # a multi-container model's ContainerHostname
INFERENCE_COMPONENT_NAME: Final = "InferenceComponentName"

# Units.
NONE: Final = "None"
COUNT: Final = "Count"
PERCENT: Final = "Percent"
MICROSECONDS: Final = "Microseconds"
MILLISECONDS: Final = "Milliseconds"
SECONDS: Final = "Seconds"

# AWS/SageMaker invocation metrics (§5.1).
INVOCATIONS: Final = "Invocations"  # 1 per request reaching the model
INVOCATIONS_PER_INSTANCE: Final = "InvocationsPerInstance"  # 1/in-service instances per request
INVOCATION_4XX_ERRORS: Final = "Invocation4XXErrors"  # 1 if the model answered 4xx, else 0
INVOCATION_5XX_ERRORS: Final = "Invocation5XXErrors"  # 1 if 5xx, else 0
INVOCATION_MODEL_ERRORS: Final = "InvocationModelErrors"  # 1 for any non-2xx/timeout, else 0
MODEL_LATENCY: Final = "ModelLatency"  # microseconds waiting on the container
OVERHEAD_LATENCY: Final = "OverheadLatency"  # microseconds of ours around ModelLatency
CONTAINER_LATENCY: Final = "ContainerLatency"  # microseconds on one container of several
MODEL_SETUP_TIME: Final = "ModelSetupTime"  # microseconds of a serverless cold start
CONCURRENT_REQUESTS_PER_MODEL: Final = "ConcurrentRequestsPerModel"  # in flight + queued

# AWS/SageMaker serverless metrics (SageMaker's serverless monitoring page); values 0..1 for
# the utilizations (time-weighted over the period), counts for the rest.
SERVERLESS_CONCURRENT_EXECUTIONS_UTILIZATION: Final = "ServerlessConcurrentExecutionsUtilization"
SERVERLESS_PC_UTILIZATION: Final = "ServerlessProvisionedConcurrencyUtilization"
SERVERLESS_PC_EXECUTIONS: Final = "ServerlessProvisionedConcurrencyExecutions"  # peak busy
SERVERLESS_PC_INVOCATIONS: Final = "ServerlessProvisionedConcurrencyInvocations"
SERVERLESS_PC_SPILLOVER_INVOCATIONS: Final = "ServerlessProvisionedConcurrencySpilloverInvocations"

# AWS/SageMaker async metrics (§5.2).
APPROXIMATE_BACKLOG_SIZE: Final = "ApproximateBacklogSize"  # dims {EndpointName} only
APPROXIMATE_BACKLOG_SIZE_PER_INSTANCE: Final = "ApproximateBacklogSizePerInstance"
APPROXIMATE_AGE_OF_OLDEST_REQUEST: Final = "ApproximateAgeOfOldestRequest"  # seconds
HAS_BACKLOG_WITHOUT_CAPACITY: Final = "HasBacklogWithoutCapacity"  # 1 or 0
INVOCATIONS_PROCESSED: Final = "InvocationsProcesssed"  # sic: AWS spells it with three s
INVOCATION_FAILURES: Final = "InvocationFailures"
TIME_IN_BACKLOG: Final = "TimeInBacklog"  # milliseconds
TOTAL_PROCESSING_TIME: Final = "TotalProcessingTime"  # milliseconds

# /aws/sagemaker/Endpoints instance metrics (§5.3).
CPU_UTILIZATION: Final = "CPUUtilization"  # percent summed over cores: 0..100*vCPUs
MEMORY_UTILIZATION: Final = "MemoryUtilization"  # percent 0..100
GPU_UTILIZATION: Final = "GPUUtilization"
GPU_MEMORY_UTILIZATION: Final = "GPUMemoryUtilization"
DISK_UTILIZATION: Final = "DiskUtilization"

# Which kinds publish each metric, with which unit and dimensions: metrics/catalogue.py.

# CloudWatch's StandardUnit enum (botocore cloudwatch model), for validation.
STANDARD_UNITS: Final = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
        "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
        "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
        "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    }
)
