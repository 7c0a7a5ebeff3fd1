"""Every metric tideserve publishes: namespace, name, unit, dimensions, and which endpoint
kinds publish it (zero-filled or not). The publishers (router, serverless invoker and
telemetry, async dispatcher and backlog, instance sampler, server) and the simulator read this
table, so an alarm that finds data live finds the same series in rehearsal, and the other way
round. tests/metrics/test_catalogue.py holds the simulator and a live server to it.

Kinds are the endpoint kinds of spec §1: real-time (instance-based), serverless, async
(instance-based behind a queue). A metric is zero-filled for a kind when SageMaker publishes a
zero for an idle variant of that kind (§5.1), so scale-in alarms see data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tideserve.metrics import names as n

REAL_TIME: Final = "real-time"
SERVERLESS: Final = "serverless"
ASYNC: Final = "async"
MULTI_MODEL: Final = "multi-model"  # a real-time variant whose model is Mode=MultiModel
KINDS: Final = (REAL_TIME, SERVERLESS, ASYNC, MULTI_MODEL)

VARIANT_DIMS: Final = (n.ENDPOINT_NAME, n.VARIANT_NAME)
ENDPOINT_DIMS: Final = (n.ENDPOINT_NAME,)
CONTAINER_DIMS: Final = (n.CONTAINER_NAME, n.ENDPOINT_NAME, n.VARIANT_NAME)
TIDESERVE: Final = "tideserve"  # our own namespace: instance lifecycle


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    unit: str
    kinds: frozenset[str]
    zero_filled: frozenset[str] = frozenset()  # kinds that publish zeros when idle
    dimensions: tuple[str, ...] = VARIANT_DIMS

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def _m(namespace: str, name: str, unit: str, kinds: tuple[str, ...],
       zero: tuple[str, ...] = (), dims: tuple[str, ...] = VARIANT_DIMS) -> Metric:
    return Metric(namespace, name, unit, frozenset(kinds), frozenset(zero), dims)


SAGEMAKER_NAMESPACE: Final = n.SAGEMAKER
INSTANCES_NAMESPACE: Final = n.ENDPOINT_INSTANCES

_RT, _SL, _AS = REAL_TIME, SERVERLESS, ASYNC
_SM, _EP = SAGEMAKER_NAMESPACE, INSTANCES_NAMESPACE

# Invocation metrics (§5.1). Async endpoints publish no Invocations (§5.2): their requests are
# counted as InvocationsProcesssed / InvocationFailures.
INVOCATIONS: Final = _m(_SM, n.INVOCATIONS, n.NONE, (_RT, _SL), (_RT, _SL))
INVOCATIONS_PER_INSTANCE: Final = _m(_SM, n.INVOCATIONS_PER_INSTANCE, n.NONE, (_RT,), (_RT,))
INVOCATION_4XX_ERRORS: Final = _m(_SM, n.INVOCATION_4XX_ERRORS, n.NONE, (_RT, _SL, _AS),
                                  (_RT, _SL))
INVOCATION_5XX_ERRORS: Final = _m(_SM, n.INVOCATION_5XX_ERRORS, n.NONE, (_RT, _SL, _AS),
                                  (_RT, _SL))
INVOCATION_MODEL_ERRORS: Final = _m(_SM, n.INVOCATION_MODEL_ERRORS, n.NONE, (_RT, _SL),
                                    (_RT, _SL))
MODEL_LATENCY: Final = _m(_SM, n.MODEL_LATENCY, n.MICROSECONDS, (_RT, _SL, _AS))
OVERHEAD_LATENCY: Final = _m(_SM, n.OVERHEAD_LATENCY, n.MICROSECONDS, (_RT, _SL))
CONCURRENT_REQUESTS_PER_MODEL: Final = _m(_SM, n.CONCURRENT_REQUESTS_PER_MODEL, n.NONE, (_RT,))

# Multi-container models (hosting-jobs §2.4). ContainerLatency is per container only
# (ContainerName = the ContainerHostname), for pipelines and direct invocation; a pipeline's
# ModelLatency is the sum over its containers. With direct invocation the variant's
# Invocations, 4XX/5XX errors and OverheadLatency are also published per container, under the
# same names with ContainerName added (PER_CONTAINER_IN_DIRECT). None is zero-filled.
CONTAINER_LATENCY: Final = _m(_SM, n.CONTAINER_LATENCY, n.MICROSECONDS, (_RT, _AS),
                              dims=CONTAINER_DIMS)
PER_CONTAINER_IN_DIRECT: Final = (INVOCATIONS, INVOCATION_4XX_ERRORS, INVOCATION_5XX_ERRORS,
                                  OVERHEAD_LATENCY)
# Only a multi-container variant publishes these: the simulator, which models a variant of one
# container, leaves them out.
MULTI_CONTAINER_ONLY: Final = frozenset({CONTAINER_LATENCY.key})

# Serverless (§5.1, serverless rows).
MODEL_SETUP_TIME: Final = _m(_SM, n.MODEL_SETUP_TIME, n.MICROSECONDS, (_SL,))
CONCURRENT_EXECUTIONS_UTILIZATION: Final = _m(
    _SM, n.SERVERLESS_CONCURRENT_EXECUTIONS_UTILIZATION, n.NONE, (_SL,))
PC_UTILIZATION: Final = _m(_SM, n.SERVERLESS_PC_UTILIZATION, n.NONE, (_SL,))
PC_EXECUTIONS: Final = _m(_SM, n.SERVERLESS_PC_EXECUTIONS, n.NONE, (_SL,))
PC_INVOCATIONS: Final = _m(_SM, n.SERVERLESS_PC_INVOCATIONS, n.NONE, (_SL,), (_SL,))
PC_SPILLOVER: Final = _m(_SM, n.SERVERLESS_PC_SPILLOVER_INVOCATIONS, n.NONE, (_SL,), (_SL,))
# Published only for variants with ProvisionedConcurrency (the invocation counts zero-filled
# there).
PROVISIONED_ONLY: Final = (PC_UTILIZATION, PC_EXECUTIONS, PC_INVOCATIONS, PC_SPILLOVER)

# Async (§5.2).
BACKLOG_SIZE: Final = _m(_SM, n.APPROXIMATE_BACKLOG_SIZE, n.COUNT, (_AS,), dims=ENDPOINT_DIMS)
BACKLOG_SIZE_PER_INSTANCE: Final = _m(_SM, n.APPROXIMATE_BACKLOG_SIZE_PER_INSTANCE, n.COUNT,
                                      (_AS,), dims=ENDPOINT_DIMS)
AGE_OF_OLDEST_REQUEST: Final = _m(_SM, n.APPROXIMATE_AGE_OF_OLDEST_REQUEST, n.SECONDS, (_AS,),
                                  dims=ENDPOINT_DIMS)
BACKLOG_WITHOUT_CAPACITY: Final = _m(_SM, n.HAS_BACKLOG_WITHOUT_CAPACITY, n.COUNT, (_AS,),
                                     dims=ENDPOINT_DIMS)
INVOCATIONS_PROCESSED: Final = _m(_SM, n.INVOCATIONS_PROCESSED, n.COUNT, (_AS,))
INVOCATION_FAILURES: Final = _m(_SM, n.INVOCATION_FAILURES, n.COUNT, (_AS,))
TIME_IN_BACKLOG: Final = _m(_SM, n.TIME_IN_BACKLOG, n.MILLISECONDS, (_AS,))
TOTAL_PROCESSING_TIME: Final = _m(_SM, n.TOTAL_PROCESSING_TIME, n.MILLISECONDS, (_AS,))
EXPIRED_REQUESTS: Final = _m(_SM, "ExpiredRequests", n.COUNT, (_AS,))
REQUEST_DOWNLOAD_FAILURES: Final = _m(_SM, "RequestDownloadFailures", n.COUNT, (_AS,))
RESPONSE_UPLOAD_FAILURES: Final = _m(_SM, "ResponseUploadFailures", n.COUNT, (_AS,))
NOTIFICATION_FAILURES: Final = _m(_SM, "NotificationFailures", n.COUNT, (_AS,))

# Instance metrics (§5.3); serverless workers report memory only (SageMaker shows no CPU for
# them). GPU and disk utilization are not sampled yet. A multi-container instance's values
# cover all its containers, and each container's are also published with ContainerName
# (PER_CONTAINER_INSTANCE; metrics/system.py).
CPU_UTILIZATION: Final = _m(_EP, n.CPU_UTILIZATION, n.PERCENT, (_RT, _AS))
MEMORY_UTILIZATION: Final = _m(_EP, n.MEMORY_UTILIZATION, n.PERCENT, (_RT, _SL, _AS))
PER_CONTAINER_INSTANCE: Final = (CPU_UTILIZATION, MEMORY_UTILIZATION)

# Multi-model endpoints (spec §1.5), on top of the real-time set: per invocation (the cache
# hit, and what a miss waited on), per download, load and unload, and LoadedModelCount per
# instance per period (Sum: models loaded over the fleet, a model on two instances twice).
_MM = MULTI_MODEL
MODEL_CACHE_HIT: Final = _m(_SM, "ModelCacheHit", n.NONE, (_MM,))
MODEL_LOADING_WAIT_TIME: Final = _m(_SM, "ModelLoadingWaitTime", n.MICROSECONDS, (_MM,))
MODEL_DOWNLOADING_TIME: Final = _m(_SM, "ModelDownloadingTime", n.MICROSECONDS, (_MM,))
MODEL_LOADING_TIME: Final = _m(_SM, "ModelLoadingTime", n.MICROSECONDS, (_MM,))
MODEL_UNLOADING_TIME: Final = _m(_SM, "ModelUnloadingTime", n.MICROSECONDS, (_MM,))
LOADED_MODEL_COUNT: Final = _m(_EP, "LoadedModelCount", n.NONE, (_MM,))
# Ours, beyond AWS (which has no per-model metrics): which model drives an MME variant's load.
TARGET_MODEL: Final = "TargetModel"  # dimension, in the tideserve namespace only
TARGET_MODEL_DIMS: Final = (n.ENDPOINT_NAME, n.VARIANT_NAME, TARGET_MODEL)
TARGET_MODEL_INVOCATIONS: Final = _m(TIDESERVE, "TargetModelInvocations", n.NONE, (_MM,),
                                     dims=TARGET_MODEL_DIMS)
TARGET_MODEL_LATENCY: Final = _m(TIDESERVE, "TargetModelLatency", n.MICROSECONDS, (_MM,),
                                 dims=TARGET_MODEL_DIMS)
MULTI_MODEL_METRICS: Final = (
    MODEL_CACHE_HIT, MODEL_LOADING_WAIT_TIME, MODEL_DOWNLOADING_TIME, MODEL_LOADING_TIME,
    MODEL_UNLOADING_TIME, LOADED_MODEL_COUNT, TARGET_MODEL_INVOCATIONS, TARGET_MODEL_LATENCY,
)

# Instance lifecycle, ours.
INSTANCE_STARTUP_TIME: Final = _m(TIDESERVE, "InstanceStartupTime", n.SECONDS, (_RT, _AS))
INSTANCE_EXITS: Final = _m(TIDESERVE, "InstanceExits", n.COUNT, (_RT, _AS))
RESTART_BACKOFF: Final = _m(TIDESERVE, "RestartBackoff", n.SECONDS, (_RT, _AS))
CONSECUTIVE_INSTANCE_EXITS: Final = _m(TIDESERVE, "ConsecutiveInstanceExits", n.COUNT, (_RT, _AS))

# Cost as metrics (cost/publish.py), per variant billed. CloudWatch has no currency unit;
# AWS's EstimatedCharges uses "None".
COST: Final = "tideserve/Cost"
HOURLY_COST: Final = _m(COST, "HourlyCost", n.NONE, (_RT, _SL, _AS))
COST_PER_INFERENCE: Final = _m(COST, "CostPerInference", n.NONE, (_RT, _SL, _AS))
# Ours, not SageMaker's: nothing a traffic trace produces, so the simulator leaves them out.
NOT_FROM_TRAFFIC: Final = frozenset({TIDESERVE, COST})

CATALOGUE: Final[dict[tuple[str, str], Metric]] = {
    m.key: m for m in (
        INVOCATIONS, INVOCATIONS_PER_INSTANCE, INVOCATION_4XX_ERRORS, INVOCATION_5XX_ERRORS,
        INVOCATION_MODEL_ERRORS, MODEL_LATENCY, OVERHEAD_LATENCY, CONCURRENT_REQUESTS_PER_MODEL,
        CONTAINER_LATENCY,
        MODEL_SETUP_TIME, CONCURRENT_EXECUTIONS_UTILIZATION, *PROVISIONED_ONLY,
        BACKLOG_SIZE, BACKLOG_SIZE_PER_INSTANCE, AGE_OF_OLDEST_REQUEST, BACKLOG_WITHOUT_CAPACITY,
        INVOCATIONS_PROCESSED, INVOCATION_FAILURES, TIME_IN_BACKLOG, TOTAL_PROCESSING_TIME,
        EXPIRED_REQUESTS, REQUEST_DOWNLOAD_FAILURES, RESPONSE_UPLOAD_FAILURES,
        NOTIFICATION_FAILURES, CPU_UTILIZATION, MEMORY_UTILIZATION, INSTANCE_STARTUP_TIME,
        INSTANCE_EXITS, RESTART_BACKOFF, CONSECUTIVE_INSTANCE_EXITS, HOURLY_COST,
        COST_PER_INFERENCE, *MULTI_MODEL_METRICS,
    )
}


def published_by(kind: str) -> list[Metric]:
    return [m for m in CATALOGUE.values() if kind in m.kinds]


def zero_filled(kind: str, provisioned: bool = False) -> list[Metric]:
    """The variant metrics published as zero each period a variant of `kind` is idle; the
    provisioned-concurrency ones only for a variant with ProvisionedConcurrency."""
    return [m for m in CATALOGUE.values() if kind in m.zero_filled
            and (provisioned or m not in PROVISIONED_ONLY)]


def lookup(namespace: str, name: str) -> Metric | None:
    return CATALOGUE.get((namespace, name))
