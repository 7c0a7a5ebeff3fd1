"""SageMaker Inference Recommender: CreateInferenceRecommendationsJob, Describe..., List...,
Stop..., ListInferenceRecommendationsJobSteps and GetScalingConfigurationRecommendation.

A job runs as a task of the server's event loop: PENDING when accepted, IN_PROGRESS while its
steps (one per endpoint configuration) run, then COMPLETED, or FAILED when no configuration
met the latency threshold or none could be benchmarked; StopInferenceRecommendationsJob moves
it to STOPPING and, once the running step's instance is gone, STOPPED. Steps run one at a
time unless ResourceLimit.MaxParallelOfTests says more (parallel tests share this machine's
cores, so their figures then interfere: the README says so). A job a stopped server left
running is FAILED when the server starts again ("the server stopped while the job ran").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from tideserve.clock import Clock
from tideserve.control import tables as ct
from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.control.models import ModelCache
from tideserve.control.names import Arns
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.errors import AlreadyExistsError, NotFoundError, ValidationError
from tideserve.fleet.base import InstanceProvider
from tideserve.objectstore.remote import FsspecObjects
from tideserve.recommender.bench import (
    Bench,
    StepOutcome,
    benchmark_endpoint_name,
    machine_cores,
    payload_folder,
    remove_folder,
)
from tideserve.recommender.payloads import read_payloads
from tideserve.recommender.record import TERMINAL, JobFiles, JobRecord, StepRecord, ts
from tideserve.recommender.results import (
    DEFAULT_CPU_PER_CORE,
    instance_count,
    invocations_at_cpu,
    latency_at,
    metrics,
    scaling_configuration,
)
from tideserve.recommender.spec import JobSpec
from tideserve.settings import Settings
from tideserve.transform.objects import EmbeddedObjects, ExternalObjects, JobObjects

log = logging.getLogger("tideserve.recommender")
MAX_RECOMMENDATIONS = 10
# Beyond AWS: a job tag naming the trace (a CSV path, as sim/trace.py reads) that
# `tideserve recommend show` replays each recommendation on when --trace is not given.
REPLAY_TRACE_TAG = "tideserve:replay-trace"


class Recommender:
    def __init__(self, files: JobFiles, control: ControlStore, objects: JobObjects,
                 bench: Bench, catalog: Catalog, arns: Arns, clock: Clock) -> None:
        self.files, self.control, self.objects = files, control, objects
        self.bench, self.catalog, self.arns, self.clock = bench, catalog, arns, clock
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stops: dict[str, asyncio.Event] = {}
        for record in files.load_all():
            if record.status not in TERMINAL:  # a server stopped while it ran
                record.move("STOPPED" if record.status == "STOPPING" else "FAILED",
                            clock.now(), "The server stopped while the job ran")
                files.save(record)
            self.jobs[record.name.lower()] = record

    def operations(self) -> dict[str, Any]:
        return {
            "CreateInferenceRecommendationsJob": self.create,
            "DescribeInferenceRecommendationsJob": self.describe,
            "ListInferenceRecommendationsJobs": self.list_jobs,
            "StopInferenceRecommendationsJob": self.stop,
            "ListInferenceRecommendationsJobSteps": self.list_steps,
            "GetScalingConfigurationRecommendation": self.scaling_recommendation,
        }

    def tideserve_operations(self) -> dict[str, Any]:
        return {"GetRecommendationEvidence": self.evidence}

    # -- operations --------------------------------------------------------------------------

    async def create(self, p: dict[str, Any]) -> dict[str, Any]:
        spec = JobSpec.parse(p, self.catalog, machine_cores())
        if self.control.get_resource(ct.models, spec.model_name) is None:
            raise ValidationError(f"Could not find model \"{self.arns.model(spec.model_name)}\".")
        payloads = await asyncio.to_thread(read_payloads, self.objects, spec.payload_url)
        key = spec.name.lower()
        if key in self.jobs:
            raise AlreadyExistsError(f"Job name {spec.name} already exists.",
                                     code="ResourceInUse")
        now = self.clock.now()
        record = JobRecord(spec.name, self.arns.sagemaker("inference-recommendations-job",
                                                          spec.name),
                           p, "PENDING", now, now)
        self.jobs[key] = record
        self.stops[key] = asyncio.Event()
        self.files.save(record)
        self.tasks[key] = asyncio.get_running_loop().create_task(
            self._run(record, spec, payloads), name=f"recommendations-{key}")
        return {"JobArn": record.arn}

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._job(p["JobName"])
        out = record.summary()
        out.pop("ModelName", None), out.pop("SamplePayloadUrl", None)
        out.pop("ModelPackageVersionArn", None)
        if not record.request.get("JobDescription"):
            out.pop("JobDescription")
        out["InputConfig"] = record.request["InputConfig"]
        if record.request.get("StoppingConditions"):
            out["StoppingConditions"] = record.request["StoppingConditions"]
        recs = self.recommendations(record)
        if recs:
            out["InferenceRecommendations"] = recs
        return out

    def list_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        query = ListQuery.parse(p)
        model, package = p.get("ModelNameEquals"), p.get("ModelPackageVersionArnEquals")
        records = [r for r in self.jobs.values()
                   if (not model or r.request["InputConfig"].get("ModelName") == model)
                   and (not package or r.request["InputConfig"].get(
                       "ModelPackageVersionArn") == package)]
        ordered = filter_and_sort(records, query, name=lambda r: r.name,
                                  created=lambda r: r.creation_time,
                                  modified=lambda r: r.last_modified_time,
                                  status=lambda r: r.status)
        return query.response("InferenceRecommendationsJobs", ordered, lambda r: r.summary())

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._job(p["JobName"])
        if record.status not in ("PENDING", "IN_PROGRESS"):
            raise ValidationError(f"The job {record.name} is {record.status} and cannot be "
                                  "stopped.")
        record.move("STOPPING", self.clock.now())
        self.files.save(record)
        # The running step ends at its next window and stops its instance; the job then
        # moves to STOPPED (a flag, not a task cancel: an instance mid-start is still stopped).
        event = self.stops.get(record.name.lower())
        if event is not None:
            event.set()
        return {}

    def list_steps(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._job(p["JobName"])
        steps = [s for s in record.steps
                 if (not p.get("Status") or s.status == p["Status"])]
        if p.get("StepType") not in (None, "BENCHMARK"):
            steps = []
        query = ListQuery.parse(p)
        chunk, token = query.page(steps)
        out: dict[str, Any] = {"Steps": [self._step_view(record, s) for s in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def scaling_recommendation(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._job(p["InferenceRecommendationsJobName"])
        if record.status != "COMPLETED":
            raise ValidationError(f"The job {record.name} is {record.status}; a scaling "
                                  "recommendation needs a COMPLETED job.")
        rec_id, endpoint = p.get("RecommendationId"), p.get("EndpointName")
        if bool(rec_id) == bool(endpoint):
            raise ValidationError("Give exactly one of RecommendationId and EndpointName")
        step = next((s for s in record.steps if s.result is not None and s.meets_threshold
                     and (rec_id == recommendation_id(record.name, s)
                          or endpoint == s.endpoint_name)), None)
        if step is None:
            raise NotFoundError(f"No recommendation {rec_id or endpoint} in job {record.name}",
                                code="ResourceNotFound")
        breaking = step.breaking()
        assert breaking is not None
        cpu = float(p.get("TargetCpuUtilizationPerCore") or DEFAULT_CPU_PER_CORE)
        itype = self.catalog.get(step.instance_type)
        points = step.point_list()
        target = invocations_at_cpu(points, breaking, itype.vcpu, cpu)
        count = self._count(record, breaking.per_minute)
        out: dict[str, Any] = {
            "InferenceRecommendationsJobName": record.name,
            "TargetCpuUtilizationPerCore": int(cpu),
            "Metric": {"InvocationsPerInstance": round(target),
                       "ModelLatency": round(latency_at(points, target,
                                                        self._percentile(record)))},
            "DynamicScalingConfiguration": scaling_configuration(
                target, count, p.get("ScalingPolicyObjective")),
        }
        out["RecommendationId" if rec_id else "EndpointName"] = rec_id or endpoint
        if p.get("ScalingPolicyObjective"):
            out["ScalingPolicyObjective"] = p["ScalingPolicyObjective"]
        return out

    def evidence(self, p: dict[str, Any]) -> dict[str, Any]:
        """Beyond AWS: each step's windows, for `tideserve recommend show` to replay."""
        record = self._job(p["JobName"])
        tags = {t.get("Key"): t.get("Value") for t in record.request.get("Tags") or []}
        steps = [{"EndpointName": s.endpoint_name, "InstanceType": s.instance_type,
                  "Status": s.status, "BreakingWindow": s.result, "StopReason": s.reason,
                  "MeetsThreshold": s.meets_threshold, "Windows": s.points}
                 for s in record.steps]
        return {"Evidence": json.dumps({"Steps": steps,
                                        "ReplayTrace": tags.get(REPLAY_TRACE_TAG)})}

    # -- views -------------------------------------------------------------------------------

    def recommendations(self, record: JobRecord) -> list[dict[str, Any]]:
        ranked = []
        for step in record.steps:
            if step.status == "COMPLETED" and step.meets_threshold:
                view = self._benchmark(record, step)
                ranked.append({"RecommendationId": recommendation_id(record.name, step),
                               **view})
        ranked.sort(key=lambda r: (r["Metrics"]["CostPerInference"], r["Metrics"]["CostPerHour"]))
        return ranked[:MAX_RECOMMENDATIONS]

    def _benchmark(self, record: JobRecord, step: StepRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"ModelConfiguration": _model_configuration(step)}
        breaking = step.breaking()
        count = self._count(record, breaking.per_minute) if breaking else 1
        out["EndpointConfiguration"] = {"EndpointName": step.endpoint_name,
                                        "VariantName": "AllTraffic",
                                        "InstanceType": step.instance_type,
                                        "InitialInstanceCount": count}
        if breaking is not None:
            out["Metrics"] = metrics(breaking, self.catalog.get(step.instance_type), count,
                                     self._percentile(record), step.setup_seconds)
        if step.started is not None:
            out["InvocationStartTime"] = ts(step.started)
        if step.ended is not None:
            out["InvocationEndTime"] = ts(step.ended)
        return out

    def _step_view(self, record: JobRecord, step: StepRecord) -> dict[str, Any]:
        bench = self._benchmark(record, step)
        if step.failure_reason:
            bench["FailureReason"] = step.failure_reason
        return {"StepType": "BENCHMARK", "JobName": record.name, "Status": step.status,
                "InferenceBenchmark": bench}

    def _count(self, record: JobRecord, per_instance: float) -> int:
        stopping = record.request.get("StoppingConditions") or {}
        return instance_count(per_instance, stopping.get("MaxInvocations"),
                              record.request["JobType"] == "Advanced")

    def _percentile(self, record: JobRecord) -> str:
        thresholds = (record.request.get("StoppingConditions") or {}).get(
            "ModelLatencyThresholds") or [{}]
        return str(thresholds[0].get("Percentile", "P95")).upper()

    def _job(self, name: str) -> JobRecord:
        record = self.jobs.get(name.lower())
        if record is None:
            raise NotFoundError(f"Could not find job {name}.", code="ResourceNotFound")
        return record

    # -- running -----------------------------------------------------------------------------

    async def _run(self, record: JobRecord, spec: JobSpec, payloads: list[bytes]) -> None:
        folder = payload_folder(payloads)
        try:
            stop = self.stops[record.name.lower()]
            if not stop.is_set():
                record.move("IN_PROGRESS", self.clock.now())
            record.steps = [StepRecord(benchmark_endpoint_name(spec.name, i),
                                       c.instance_type.name, "PENDING",
                                       environment=c.environment)
                            for i, c in enumerate(spec.candidates)]
            self.files.save(record)
            gate = asyncio.Semaphore(max(1, spec.max_parallel))

            async def one(i: int) -> None:
                async with gate:
                    if stop.is_set():
                        record.steps[i].status = "STOPPED"
                        return
                    record.steps[i].status = "IN_PROGRESS"
                    outcome = await self.bench.run(spec, record.arn, spec.candidates[i], i,
                                                   Path(folder), stop)
                    record.steps[i] = _step_record(outcome, spec.candidates[i].environment)
                    self.files.save(record)

            await asyncio.gather(*(one(i) for i in range(len(spec.candidates))))
            if stop.is_set():
                record.move("STOPPED", self.clock.now())
            else:
                self._finish(record)
        except asyncio.CancelledError:  # the server is shutting down
            record.move("STOPPED", self.clock.now(), "The server stopped while the job ran")
            raise
        except Exception as exc:
            log.exception("recommendations job %s failed", record.name)
            record.move("FAILED", self.clock.now(), f"InternalError: {exc}")
        finally:
            remove_folder(folder)
            self.files.save(record)
            self.tasks.pop(record.name.lower(), None)
            self.stops.pop(record.name.lower(), None)

    def _finish(self, record: JobRecord) -> None:
        now = self.clock.now()
        if self.recommendations(record):
            record.move("COMPLETED", now)
            return
        reasons = "; ".join(f"{s.instance_type}: {s.failure_reason or _why_not(s)}"
                            for s in record.steps)
        record.move("FAILED", now, f"No endpoint configuration met the stopping conditions: "
                                   f"{reasons}")

    async def shutdown(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _why_not(step: StepRecord) -> str:
    breaking = step.breaking()
    if breaking is None:
        return "no window was measured"
    return f"even the lightest load broke the latency threshold (p95 {breaking.p95_ms:.0f} ms)"


def _step_record(outcome: StepOutcome, environment: dict[str, str]) -> StepRecord:
    step = StepRecord(outcome.endpoint_name, outcome.instance_type, outcome.status,
                      outcome.failure_reason, setup_seconds=outcome.setup_seconds,
                      started=outcome.started, ended=outcome.ended, environment=environment)
    for w in outcome.windows:
        step.points.append({"per_minute": w.per_minute, "users": w.users, "p50_ms": w.p50_ms,
                            "p95_ms": w.p95_ms, "p99_ms": w.p99_ms,
                            "cpu_percent": w.cpu_percent, "memory_percent": w.memory_percent})
    v = outcome.verdict
    if v is not None and v.result is not None:
        step.result = outcome.windows.index(v.result)
        step.reason, step.meets_threshold = v.reason, v.meets_threshold
    return step


def _model_configuration(step: StepRecord) -> dict[str, Any]:
    if not step.environment:
        return {}
    return {"EnvironmentParameters": [{"Key": k, "ValueType": "String", "Value": v}
                                      for k, v in sorted(step.environment.items())]}


def recommendation_id(job: str, step: StepRecord) -> str:
    digest = hashlib.sha256(f"{job}/{step.endpoint_name}".encode()).hexdigest()[:8]
    return f"{job}/{digest}"


def build_recommender(settings: Settings, control: ControlStore, models: ModelCache,
                      provider: InstanceProvider, catalog: Catalog, ledger: Ledger, arns: Arns,
                      clock: Clock, external: FsspecObjects | None) -> Recommender:
    """The service over the server's object store, fleet provider and ledger. A test window
    is half a metric period (30 s as AWS runs; 1 s at --period 2)."""
    state = Path(settings.state_dir)
    objects: JobObjects = (EmbeddedObjects(state / "s3") if external is None
                           else ExternalObjects(external, state / "s3-tmp"))
    bench = Bench(control, models, provider, ledger, clock, settings.time_scale,
                  settings.period / 2, settings.trust_pickle)
    return Recommender(JobFiles(state / "recommendations"), control, objects, bench, catalog,
                       arns, clock)
