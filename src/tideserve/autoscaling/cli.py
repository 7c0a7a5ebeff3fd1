"""`tideserve scaling ...`: Application Auto Scaling for people who don't write boto3. Each
command is one or two boto3 calls against the running server, so what it does is exactly
what the API does.

    tideserve scaling register ENDPOINT [--variant AllTraffic] --min 1 --max 4
    tideserve scaling policy ENDPOINT --target-tracking InvocationsPerInstance=70
                             [--scale-in-cooldown 300 --scale-out-cooldown 300]
    tideserve scaling policy ENDPOINT --cpu 50
    tideserve scaling schedule ENDPOINT NAME --cron '0 18 ? * MON-FRI *' --min 2 --max 4
                             [--timezone America/New_York]
    tideserve scaling activities ENDPOINT [--all]
    tideserve scaling show ENDPOINT
    tideserve scaling deregister ENDPOINT
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tideserve.client import client, default_url

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Short names for the predefined metrics a variant can track.
PREDEFINED = {
    "InvocationsPerInstance": "SageMakerVariantInvocationsPerInstance",
    "ConcurrentRequestsPerModel": "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    "ProvisionedConcurrencyUtilization": "SageMakerVariantProvisionedConcurrencyUtilization",
}


def add_scaling_parser(subparsers: Any) -> None:
    """Add `scaling` and its commands to the `tideserve` parser's subparsers."""
    scaling = subparsers.add_parser("scaling", help="autoscale endpoint variants (AAS)")
    sub = scaling.add_subparsers(dest="scaling_command", required=True)
    for name, helptext, extra in (
        ("register", "register a variant as a scalable target (create or update)", _register),
        ("deregister", "deregister a variant: its policies and schedules go too", None),
        ("policy", "put a target-tracking policy", _policy),
        ("schedule", "put a scheduled action that sets Min/Max", _schedule),
        ("activities", "list scaling activities, newest first", _activities),
        ("show", "show the target, its policies and scheduled actions", None),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("endpoint")
        p.add_argument("--variant", default="AllTraffic")
        p.add_argument("--url", default=default_url())
        p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
        if extra is not None:
            extra(p)


def _register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min", type=int, dest="min_capacity")
    p.add_argument("--max", type=int, dest="max_capacity")


def _policy(p: argparse.ArgumentParser) -> None:
    metric = p.add_mutually_exclusive_group(required=True)
    metric.add_argument("--target-tracking", metavar="METRIC=VALUE",
                        help=f"one of {', '.join(PREDEFINED)} (or a full "
                             "PredefinedMetricType), e.g. InvocationsPerInstance=70")
    metric.add_argument("--cpu", type=float, metavar="PERCENT",
                        help="track the variant's average CPUUtilization")
    p.add_argument("--name", help="policy name (default: derived from the metric)")
    p.add_argument("--scale-in-cooldown", type=int)
    p.add_argument("--scale-out-cooldown", type=int)
    p.add_argument("--disable-scale-in", action="store_true")


def _schedule(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="six fields, e.g. '0 18 ? * MON-FRI *'")
    when.add_argument("--at", help="yyyy-mm-ddThh:mm:ss")
    when.add_argument("--rate", help="e.g. '5 minutes'")
    p.add_argument("--min", type=int, dest="min_capacity")
    p.add_argument("--max", type=int, dest="max_capacity")
    p.add_argument("--timezone")


def _activities(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="include decisions that did not scale")
    p.add_argument("--limit", type=int, default=20)


def target(args: argparse.Namespace) -> dict[str, str]:
    return {"ServiceNamespace": "sagemaker", "ScalableDimension": DIMENSION,
            "ResourceId": f"endpoint/{args.endpoint}/variant/{args.variant}"}


def policy_request(args: argparse.Namespace) -> dict[str, Any]:
    """The PutScalingPolicy request the `policy` flags describe."""
    config: dict[str, Any] = {}
    if args.cpu is not None:
        config["TargetValue"] = args.cpu
        config["CustomizedMetricSpecification"] = {
            "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints",
            "Statistic": "Average",
            "Dimensions": [{"Name": "EndpointName", "Value": args.endpoint},
                           {"Name": "VariantName", "Value": args.variant}]}
        default_name = "cpu-target-tracking"
    else:
        metric, sep, value = str(args.target_tracking).partition("=")
        if not sep:
            raise SystemExit("--target-tracking wants METRIC=VALUE, e.g. InvocationsPerInstance=70")
        config["TargetValue"] = float(value)
        config["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": PREDEFINED.get(metric, metric)}
        default_name = f"{metric}-target-tracking"
    for flag, member in (("scale_in_cooldown", "ScaleInCooldown"),
                         ("scale_out_cooldown", "ScaleOutCooldown")):
        if getattr(args, flag) is not None:
            config[member] = getattr(args, flag)
    if args.disable_scale_in:
        config["DisableScaleIn"] = True
    return {**target(args), "PolicyName": args.name or default_name,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": config}


def schedule_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.cron:
        expr = args.cron if args.cron.startswith("cron(") else f"cron({args.cron})"
    elif args.at:
        expr = args.at if args.at.startswith("at(") else f"at({args.at})"
    else:
        expr = args.rate if args.rate.startswith("rate(") else f"rate({args.rate})"
    request: dict[str, Any] = {**target(args), "ScheduledActionName": args.name,
                               "Schedule": expr}
    bounds = {k: v for k, v in (("MinCapacity", args.min_capacity),
                                ("MaxCapacity", args.max_capacity)) if v is not None}
    if bounds:
        request["ScalableTargetAction"] = bounds
    if args.timezone:
        request["Timezone"] = args.timezone
    return request


def run_scaling(args: argparse.Namespace) -> int:
    aas = client("application-autoscaling", args.url, args.state_dir)
    return _COMMANDS[args.scaling_command](aas, args)


def _do_register(aas: Any, args: argparse.Namespace) -> int:
    request: dict[str, Any] = target(args)
    if args.min_capacity is not None:
        request["MinCapacity"] = args.min_capacity
    if args.max_capacity is not None:
        request["MaxCapacity"] = args.max_capacity
    print(aas.register_scalable_target(**request)["ScalableTargetARN"])
    return 0


def _do_deregister(aas: Any, args: argparse.Namespace) -> int:
    aas.deregister_scalable_target(**target(args))
    print(f"deregistered {target(args)['ResourceId']}")
    return 0


def _do_policy(aas: Any, args: argparse.Namespace) -> int:
    out = aas.put_scaling_policy(**policy_request(args))
    print(out["PolicyARN"])
    for alarm in out.get("Alarms", []):
        print(f"  alarm {alarm['AlarmName']}")
    return 0


def _do_schedule(aas: Any, args: argparse.Namespace) -> int:
    request = schedule_request(args)
    aas.put_scheduled_action(**request)
    print(f"scheduled {args.name}: {request['Schedule']}")
    return 0


def _do_activities(aas: Any, args: argparse.Namespace) -> int:
    out = aas.describe_scaling_activities(**target(args), MaxResults=min(args.limit, 50),
                                          IncludeNotScaledActivities=args.all)
    for a in out["ScalingActivities"]:
        reasons = ",".join(r["Code"] for r in a.get("NotScaledReasons", []))
        print(f"{a['StartTime']:%Y-%m-%d %H:%M:%S}  {a['StatusCode']:11} {a['Description']}"
              + (f" [{reasons}]" if reasons else ""))
        print(f"    cause: {a['Cause']}")
        if a.get("StatusMessage"):
            print(f"    {a['StatusMessage']}")
    return 0


def _do_show(aas: Any, args: argparse.Namespace) -> int:
    ids = target(args)
    found = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                          ResourceIds=[ids["ResourceId"]])["ScalableTargets"]
    if not found:
        print(f"{ids['ResourceId']} is not registered")
        return 1
    t = found[0]
    predicted = f", predicted {t['PredictedCapacity']}" if "PredictedCapacity" in t else ""
    print(f"{t['ResourceId']}: min {t['MinCapacity']}, max {t['MaxCapacity']}{predicted}")
    for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                           ResourceId=ids["ResourceId"])["ScalingPolicies"]:
        pred = p.get("PredictiveScalingPolicyConfiguration")
        if pred is not None:
            spec = pred["MetricSpecifications"][0]
            print(f"  policy {p['PolicyName']} ({p['PolicyType']}, {pred['Mode']}) target "
                  f"{spec.get('TargetValue')}, buffer {pred['SchedulingBufferTime']} s")
            continue
        tt = p.get("TargetTrackingScalingPolicyConfiguration", {})
        print(f"  policy {p['PolicyName']} ({p['PolicyType']}) target {tt.get('TargetValue')}")
    for s in aas.describe_scheduled_actions(ServiceNamespace="sagemaker",
                                            ResourceId=ids["ResourceId"])["ScheduledActions"]:
        print(f"  schedule {s['ScheduledActionName']}: {s['Schedule']} "
              f"{s.get('ScalableTargetAction', {})}")
    return 0


_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "register": _do_register, "deregister": _do_deregister, "policy": _do_policy,
    "schedule": _do_schedule, "activities": _do_activities, "show": _do_show,
}
