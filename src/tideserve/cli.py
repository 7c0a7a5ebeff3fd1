"""The `tideserve` command: `up` runs the server; the rest are thin boto3 clients of it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from tideserve.access.cli import add_keys_parser, run_keys
from tideserve.autoscaling.cli import add_scaling_parser, run_scaling
from tideserve.budgets.cli import add_budgets_parser, run_budgets
from tideserve.client import URL_ENV, client, default_url
from tideserve.cluster.cli import add_db_parser, run_db
from tideserve.cost.cli import add_costs_parser, run_costs
from tideserve.cost.rightsize_cli import add_rightsize_parser, run_rightsize
from tideserve.errors import ValidationError
from tideserve.objectstore.remote import OPTIONS_ENV, options_from_env
from tideserve.recommender.cli import add_recommend_parser, run_recommend
from tideserve.settings import DEFAULT_REGION, Settings
from tideserve.sim.cli import add_simulate_parser, run_simulate
from tideserve.stacks.cli import add_stack_parser, run_stack
from tideserve.tracing.cli import add_traces_parser, run_traces
from tideserve.training.cli import add_spot_parser, run_spot
from tideserve.training.rows import print_training_job, training_job_rows
from tideserve.transform.cli import add_jobs_parser, run_jobs, transform_job_rows
from tideserve.tuning.cli import add_tune_parser, run_tune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tideserve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the server (API, router, controller) on one port")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    up.add_argument("--period", type=float, default=60.0,
                    help="metric period in seconds (60 as CloudWatch; smaller compresses time)")
    up.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite)")
    up.add_argument("--region", default=DEFAULT_REGION,
                    help="the server's AWS region: ARNs, and the region signatures are scoped to")
    up.add_argument("--allowed-regions", default="", metavar="R1,R2",
                    help="further regions a SigV4 credential scope may name")
    up.add_argument("--secret-key-file", type=Path,
                    default=os.environ.get("TIDESERVE_SECRET_KEY_FILE") or None,
                    help="key sealing access-key secrets in the database (default: "
                    "<state-dir>/secret.key; env TIDESERVE_SECRET_KEY_FILE)")
    up.add_argument("--trust-pickle", action="store_true",
                    help="allow joblib/pickle model files (unpickling runs code)")
    up.add_argument("--max-model-size", type=float, default=30.0, metavar="GB",
                    help="most a model's data may unpack to, in GB (default 30, a SageMaker "
                    "hosting instance's default storage volume)")
    up.add_argument("--model-timeout", type=float, default=55.0, metavar="SECONDS",
                    help="how long InvokeEndpoint waits for the model (default 55: under "
                    "botocore's 60-s read_timeout; raise both to give models AWS's 60 s)")
    up.add_argument("--object-store", default=None, metavar="URL",
                    help="fsspec URL prefix that s3://bucket/key maps onto: s3:// (real S3; "
                    "needs `pip install s3fs`), file:///mnt/shared/s3, memory://; default: the "
                    f"embedded store under <state-dir>/s3. Storage options: ${OPTIONS_ENV} "
                    "(JSON, e.g. endpoint_url, key, secret)")

    up.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="close a connection whose request header is not complete this long "
                    "after its first byte (slowloris)")
    up.add_argument("--max-connections-per-client", type=int, default=1024, metavar="N",
                    help="open connections one client IP may hold; past it, its least "
                    "recently used idle one is closed")
    up.add_argument("--otlp-endpoint", default=None, metavar="URL",
                    help="export traces over OTLP/HTTP, e.g. http://localhost:4318 (default: "
                    "OTEL_EXPORTER_OTLP_*; traces are kept in memory for `tideserve traces` "
                    "either way)")
    up.add_argument("--trace-sample-ratio", type=float, default=None, metavar="R",
                    help="share of requests traced, 0 to 1, a client's sampled flag "
                    "respected (default: OTEL_TRACES_SAMPLER, else every request)")

    for name, helptext in (("deploy", "create model, endpoint config and endpoint in one step"),
                           ("invoke", "invoke an endpoint"),
                           ("endpoints", "list endpoints, or describe one"),
                           ("metrics", "print an endpoint's per-period metrics")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--url", default=default_url(),
                       help=f"the server (default: ${URL_ENV}, else http://127.0.0.1:8080)")
        p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
        _CLIENT_ARGS[name](p)

    add_costs_parser(sub)
    add_scaling_parser(sub)
    add_simulate_parser(sub)
    add_tune_parser(sub)
    add_keys_parser(sub)
    add_jobs_parser(sub)
    add_spot_parser(sub)
    add_traces_parser(sub)
    add_stack_parser(sub)
    add_rightsize_parser(sub)  # cost advice (cost/rightsize_cli.py, budgets/cli.py)
    add_budgets_parser(sub)
    add_recommend_parser(sub)
    add_db_parser(sub)

    args = parser.parse_args(argv)
    if args.command == "up":
        from tideserve.server import serve

        try:
            settings = Settings(state_dir=args.state_dir, host=args.host, port=args.port,
                                period=args.period, database_url=args.database_url,
                                region=args.region, secret_key_file=args.secret_key_file,
                                allowed_regions=tuple(
                                    r for r in args.allowed_regions.split(",") if r),
                                trust_pickle=args.trust_pickle, object_store=args.object_store,
                                max_model_bytes=int(args.max_model_size * 10**9),
                                model_timeout=args.model_timeout,
                                object_store_options=options_from_env(os.environ),
                                header_timeout=args.header_timeout,
                                max_connections_per_client=args.max_connections_per_client,
                                otlp_endpoint=args.otlp_endpoint,
                                trace_sample_ratio=args.trace_sample_ratio)
            # boto3 finds the keys through this variable: the line to paste into a shell.
            print(f"export AWS_SHARED_CREDENTIALS_FILE={settings.state_dir / 'credentials'}",
                  flush=True)
            serve(settings)
        except ValidationError as exc:  # a bad --object-store or its options: say why
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        return 0
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except Exception as exc:  # botocore ClientError and friends: print, don't trace
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _deploy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", type=Path, help="YAML with name, model and variants")
    p.add_argument("--name", help="endpoint name (model and config take it too)")
    p.add_argument("--model-data",
                   help="ModelDataUrl: model.tar.gz or a directory, as a path (a relative one "
                        "is taken from the current directory), file:// or s3:// URL")
    p.add_argument("--image", default="tideserve/sklearn")
    p.add_argument("--instance-type", default="ml.m5.large")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-wait", action="store_true")


def _invoke_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint")
    p.add_argument("--body", help="request body (default: stdin)")
    p.add_argument("--content-type", default="text/csv")
    p.add_argument("--accept", default="application/json")
    p.add_argument("--target-variant")


def _endpoints_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", nargs="?")


def _metrics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint")
    p.add_argument("--variant", default="AllTraffic")
    p.add_argument("--minutes", type=float, default=15)
    p.add_argument("--period", type=int, default=60)


_CLIENT_ARGS = {"deploy": _deploy_args, "invoke": _invoke_args,
                "endpoints": _endpoints_args, "metrics": _metrics_args}


def deploy_spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        spec: dict[str, Any] = yaml.safe_load(args.file.read_text())
        model = spec.get("model") or {}
        if "model_data_url" in model:  # relative to the deploy file, as compose files are
            model["model_data_url"] = local_model_data(str(model["model_data_url"]),
                                                       args.file.parent)
    else:
        if not args.name or not args.model_data:
            raise SystemExit("deploy needs --file, or --name and --model-data")
        spec = {
            "name": args.name,
            "model": {"image": args.image,
                      "model_data_url": local_model_data(args.model_data, Path.cwd()),
                      "environment": dict(kv.split("=", 1) for kv in args.env)},
            "variants": [{"name": "AllTraffic", "instance_type": args.instance_type,
                          "instance_count": args.instance_count}],
        }
    return spec


def local_model_data(url: str, base: Path) -> str:
    """A relative path becomes absolute against `base` (the caller's working directory, or the
    deploy file's folder): the server has a working directory of its own, so it accepts only
    absolute paths, file:// and s3:// URLs. Those go as they are."""
    if "://" in url or Path(url).is_absolute():
        return url
    return str((base / url).resolve())


def deploy(args: argparse.Namespace) -> int:
    spec = deploy_spec(args)
    sm = client("sagemaker", args.url, args.state_dir)
    name = spec["name"]
    model = spec["model"]
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": model["image"], "ModelDataUrl": str(model["model_data_url"]),
                          "Environment": {k: str(v) for k, v in
                                          (model.get("environment") or {}).items()}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/tideserve",
    )
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": v.get("name", "AllTraffic"), "ModelName": name,
         "InstanceType": v.get("instance_type", "ml.m5.large"),
         "InitialInstanceCount": int(v.get("instance_count", 1)),
         "InitialVariantWeight": float(v.get("weight", 1.0))}
        for v in spec.get("variants") or [{}]
    ])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if not args.no_wait:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    print(json.dumps(_summary(sm.describe_endpoint(EndpointName=name)), indent=2))
    return 0


def invoke(args: argparse.Namespace) -> int:
    body = args.body if args.body is not None else sys.stdin.read()
    rt = client("sagemaker-runtime", args.url, args.state_dir)
    kwargs: dict[str, Any] = {"EndpointName": args.endpoint, "Body": body.encode(),
                              "ContentType": args.content_type, "Accept": args.accept}
    if args.target_variant:
        kwargs["TargetVariant"] = args.target_variant
    resp = rt.invoke_endpoint(**kwargs)
    sys.stdout.write(resp["Body"].read().decode() + "\n")
    return 0


def endpoints(args: argparse.Namespace) -> int:
    sm = client("sagemaker", args.url, args.state_dir)
    if args.endpoint:
        print(json.dumps(_summary(sm.describe_endpoint(EndpointName=args.endpoint)), indent=2))
        return 0
    print(f"{'ENDPOINT':32} {'STATUS':14} {'INSTANCES (current/desired)'}")
    for page in sm.get_paginator("list_endpoints").paginate():
        for e in page["Endpoints"]:
            desc = sm.describe_endpoint(EndpointName=e["EndpointName"])
            counts = ", ".join(
                f"{v['VariantName']} {v.get('CurrentInstanceCount', 0)}/"
                f"{v.get('DesiredInstanceCount', 0)}"
                for v in desc.get("ProductionVariants", [])
            )
            print(f"{e['EndpointName']:32} {e['EndpointStatus']:14} {counts}")
    return 0


def metrics(args: argparse.Namespace) -> int:
    cw = client("cloudwatch", args.url, args.state_dir)
    end = datetime.now(UTC)
    start = end - timedelta(minutes=args.minutes)
    dims = [{"Name": "EndpointName", "Value": args.endpoint},
            {"Name": "VariantName", "Value": args.variant}]
    for name, stats in (("Invocations", ["Sum"]), ("InvocationsPerInstance", ["Sum"]),
                        ("ModelLatency", ["Average", "Maximum"]),
                        ("OverheadLatency", ["Average"]), ("InvocationModelErrors", ["Sum"])):
        resp = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims, StartTime=start,
            EndTime=end, Period=args.period, Statistics=stats)
        points = sorted(resp["Datapoints"], key=lambda d: d["Timestamp"])
        print(f"{name}:")
        for d in points:
            values = "  ".join(f"{s}={d[s]:.1f}" for s in stats)
            print(f"  {d['Timestamp']:%H:%M:%S}  {values}")
    return 0


def _summary(desc: dict[str, Any]) -> dict[str, Any]:
    keep = ("EndpointName", "EndpointStatus", "FailureReason", "EndpointConfigName")
    out = {k: desc[k] for k in keep if k in desc}
    out["Variants"] = [
        {k: v.get(k) for k in ("VariantName", "CurrentInstanceCount", "DesiredInstanceCount",
                               "CurrentWeight")}
        for v in desc.get("ProductionVariants", [])
    ]
    return out


# Every kind of job in one `tideserve jobs` list; NAME follows a transform or a training job.
run_all_jobs = partial(run_jobs, sources=(transform_job_rows, training_job_rows),
                       printers=(print_training_job,))

_COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "deploy": deploy, "invoke": invoke, "endpoints": endpoints, "metrics": metrics,
    "costs": run_costs, "scaling": run_scaling, "simulate": run_simulate, "keys": run_keys,
    "jobs": run_all_jobs, "spot": run_spot, "traces": run_traces,
    "stack": run_stack, "rightsize": run_rightsize, "budgets": run_budgets,
    "recommend": run_recommend, "tune": run_tune,
    "db": run_db}

if __name__ == "__main__":
    sys.exit(main())
