"""`tideserve recommend`: a thin boto3 client of an Inference Recommender job.

    tideserve recommend show JOB [--trace CSV] [--rate-scale X]
        the ranked table (cheapest per inference first), each row with the TargetValue of
        SageMakerVariantInvocationsPerInstance that GetScalingConfigurationRecommendation
        gives it; with a trace (or the job's tideserve:replay-trace tag), each recommendation
        replayed in the simulator with that policy: its cost and share of requests over the
        latency threshold. Steps that did not finish are listed with their FailureReason.
    tideserve recommend apply JOB [--endpoint NAME] [--max-capacity N]
        deploys the cheapest recommendation that met the threshold (a new endpoint config;
        CreateEndpoint, or UpdateEndpoint when the endpoint exists), waits for InService,
        and registers its scalable target and target-tracking policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tideserve.client import client, default_url, tideserve_client
from tideserve.recommender.replay import replay

POLICY_NAME = "recommended-invocations-target"


def add_recommend_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "recommend", help="show an inference recommendations job, or apply its cheapest")
    sub = p.add_subparsers(dest="recommend_command", required=True)
    show = sub.add_parser("show", help="the ranked recommendations (and a replay on a trace)")
    show.add_argument("job")
    show.add_argument("--trace", type=Path, default=None,
                      help="a traffic trace CSV (t_seconds,requests) to replay each "
                           "recommendation on (default: the job's tideserve:replay-trace tag)")
    show.add_argument("--rate-scale", type=float, default=1.0)
    apply = sub.add_parser("apply", help="deploy the cheapest recommendation with its policy")
    apply.add_argument("job")
    apply.add_argument("--endpoint", default=None, help="endpoint name (default: the job's)")
    apply.add_argument("--max-capacity", type=int, default=4,
                       help="the scalable target's MaxCapacity (default 4)")
    for q in (show, apply):
        q.add_argument("--url", default=default_url())
        q.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    return p


def run_recommend(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    sm = client("sagemaker", args.url, args.state_dir)
    job = sm.describe_inference_recommendations_job(JobName=args.job)
    if args.recommend_command == "show":
        return show(sm, job, args, out)
    return apply(sm, client("application-autoscaling", args.url, args.state_dir), job, args,
                 out)


def _target(sm: Any, job: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    return dict(sm.get_scaling_configuration_recommendation(
        InferenceRecommendationsJobName=job["JobName"],
        RecommendationId=rec["RecommendationId"])["DynamicScalingConfiguration"])


def show(sm: Any, job: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"{job['JobName']}  {job['JobType']}  {job['Status']}\n")
    if job.get("FailureReason"):
        out.write(f"  {job['FailureReason']}\n")
    recs = job.get("InferenceRecommendations", [])
    evidence = json.loads(tideserve_client(args.url, args.state_dir).get_recommendation_evidence(
        JobName=job["JobName"])["Evidence"])
    trace = args.trace or (Path(evidence["ReplayTrace"]) if evidence.get("ReplayTrace") else None)
    threshold = _threshold(job)
    head = (f"{'#':>2}  {'InstanceType':<14}{'Count':>5}{'MaxInv/min':>11}{'Latency':>9}"
            f"{'CPU%':>7}{'Mem%':>6}{'$/hour':>8}{'$/inference':>13}{'TargetValue':>12}")
    if trace is not None:
        head += f"{'replay $':>10}{'over SLO':>9}"
    out.write(head + "\n")
    windows = {s["EndpointName"]: s["Windows"] for s in evidence["Steps"]}
    for i, rec in enumerate(recs, 1):
        m, e = rec["Metrics"], rec["EndpointConfiguration"]
        scaling = _target(sm, job, rec)
        target = scaling["ScalingPolicies"][0]["TargetTracking"]["TargetValue"]
        line = (f"{i:>2}  {e['InstanceType']:<14}{e.get('InitialInstanceCount', 1):>5}"
                f"{m['MaxInvocations']:>11}{m['ModelLatency']:>7}ms{m['CpuUtilization']:>7.1f}"
                f"{m['MemoryUtilization']:>6.1f}{m['CostPerHour']:>8.3f}"
                f"{m['CostPerInference']:>13.3e}{target:>12.0f}")
        if trace is not None and threshold is not None:
            r = replay(rec, windows[e["EndpointName"]], target, trace, threshold[1],
                       threshold[0], args.rate_scale)
            line += f"{r.cost_usd:>10.2f}{100 * r.over_slo_share:>8.2f}%"
        out.write(line + "\n")
    for step in sm.list_inference_recommendations_job_steps(JobName=job["JobName"])["Steps"]:
        bench = step["InferenceBenchmark"]
        if bench.get("FailureReason"):
            out.write(f"    not recommended: {bench['EndpointConfiguration']['InstanceType']}: "
                      f"{bench['FailureReason']}\n")
    return 0


def _threshold(job: dict[str, Any]) -> tuple[float, float] | None:
    """(percentile, milliseconds) of the job's latency threshold."""
    for t in (job.get("StoppingConditions") or {}).get("ModelLatencyThresholds") or []:
        return float(str(t["Percentile"]).upper().lstrip("P")), float(t["ValueInMilliseconds"])
    return None


def apply(sm: Any, aas: Any, job: dict[str, Any], args: argparse.Namespace,
          out: TextIO) -> int:
    recs = job.get("InferenceRecommendations") or []
    if job["Status"] != "COMPLETED" or not recs:
        out.write(f"job {job['JobName']} is {job['Status']} with no recommendation to apply\n")
        return 1
    best = recs[0]  # ranked by CostPerInference; only configurations that met the threshold
    e = best["EndpointConfiguration"]
    endpoint = args.endpoint or job["JobName"]
    config = f"{endpoint}-{e['InstanceType'].replace('.', '-')}-{int(time.time())}"[:63]
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": job["InputConfig"]["ModelName"],
        "InstanceType": e["InstanceType"],
        "InitialInstanceCount": int(e.get("InitialInstanceCount", 1))}])
    try:
        sm.describe_endpoint(EndpointName=endpoint)
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        verb = "updated"
    except sm.exceptions.ClientError:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        verb = "created"
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint,
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    scaling = _target(sm, job, best)
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    low = int(scaling["MinCapacity"])
    aas.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=low,
        MaxCapacity=max(low, int(scaling["MaxCapacity"]), args.max_capacity))
    target = scaling["ScalingPolicies"][0]["TargetTracking"]
    aas.put_scaling_policy(
        PolicyName=POLICY_NAME, ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target["TargetValue"],
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": int(scaling["ScaleInCooldown"]),
            "ScaleOutCooldown": int(scaling["ScaleOutCooldown"])})
    out.write(f"{verb} endpoint {endpoint} on {e['InstanceType']} x "
              f"{e.get('InitialInstanceCount', 1)} (config {config}); target tracking "
              f"InvocationsPerInstance = {target['TargetValue']:.0f}\n")
    return 0
