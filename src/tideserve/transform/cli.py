"""`tideserve jobs`: the jobs a server runs, and a live progress bar for one. A thin client:
ListTransformJobs/DescribeTransformJob through boto3, progress through the signed tideserve
route (progress.py).

    tideserve jobs            NAME  KIND  STATUS  CREATED  DURATION  (newest first)
    tideserve jobs NAME       [#########.......]  56.1%  records 1,204,331  bytes 2.1/3.8 GB
                              41.2 MB/s  ETA 0:00:41  objects 11/20   (until the job ends)

Training jobs are listed here too: cli.py hands `run_jobs` the training package's rows and
printer (training/rows.py); this module only lists and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tideserve.client import client, default_url
from tideserve.transform.progress import PREFIX, SUFFIX

TERMINAL = ("Completed", "Failed", "Stopped")
BAR_WIDTH = 30
# One row per job: (name, kind, status, creation time, seconds it ran or has run so far).
JobRowsSource = Callable[[Any], list[tuple[str, str, str, datetime, float | None]]]


def add_jobs_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "jobs", help="list transform (and training) jobs, or follow one's progress")
    p.add_argument("name", nargs="?", help="a job to follow with a live progress bar")
    p.add_argument("--url", default=default_url())
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--once", action="store_true", help="print the progress once and return")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between updates")
    return p


def transform_job_rows(sm: Any) -> list[tuple[str, str, str, datetime, float | None]]:
    rows = []
    for page in sm.get_paginator("list_transform_jobs").paginate():
        for job in page["TransformJobSummaries"]:
            end = job.get("TransformEndTime")
            created = job["CreationTime"]
            seconds = (end - created).total_seconds() if end else None
            rows.append((job["TransformJobName"], "Transform", job["TransformJobStatus"],
                         created, seconds))
    return rows


# `tideserve jobs NAME` for a job of another kind: prints it and says True, or says False
# when `name` is not one of its jobs (training/rows.py has the training one).
JobPrinter = Callable[[Any, str, TextIO], bool]


def run_jobs(args: argparse.Namespace, out: TextIO | None = None, *,
             sources: Sequence[JobRowsSource] = (transform_job_rows,),
             printers: Sequence[JobPrinter] = ()) -> int:
    """List every kind's jobs (`sources`: the wiring in cli.py adds training's), or follow
    one: a transform job with its progress bar, another kind's through its printer."""
    out = out or sys.stdout
    sm = client("sagemaker", args.url, args.state_dir)
    if args.name:
        if any(show(sm, args.name, out) for show in printers):
            return 0
        return follow(sm, args.name, out, once=args.once, interval=args.interval)
    rows = [row for source in sources for row in source(sm)]
    rows.sort(key=lambda r: r[3], reverse=True)
    table = [["NAME", "KIND", "STATUS", "CREATED", "DURATION"]]
    for name, kind, status, created, seconds in rows:
        table.append([name, kind, status, created.strftime("%Y-%m-%d %H:%M:%S"),
                      "-" if seconds is None else _clock(seconds)])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
    return 0


def fetch_progress(sm: Any, name: str) -> dict[str, Any]:
    """GET the job's progress from the server, signed with the client's own credentials."""
    import urllib.error
    import urllib.request

    url = sm.meta.endpoint_url.rstrip("/") + PREFIX + quote(name, safe="") + SUFFIX
    request = AWSRequest(method="GET", url=url)
    # The client's resolved credentials: the same keys every boto3 call of it signs with.
    credentials = sm._request_signer._credentials.get_frozen_credentials()
    SigV4Auth(credentials, "sagemaker", sm.meta.region_name).add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers.items()), method="GET")
    try:
        with urllib.request.urlopen(prepared, timeout=10) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise RuntimeError(f"{body.get('__type', exc.code)}: {body.get('message', '')}"
                           ) from None


def follow(sm: Any, name: str, out: TextIO, *, once: bool = False,
           interval: float = 1.0) -> int:
    """Print the progress bar (redrawn in place on a terminal) until the job ends."""
    last: tuple[float, int] | None = None
    rate = 0.0
    while True:
        p = fetch_progress(sm, name)
        now = time.monotonic()
        if last is not None and now > last[0]:
            rate = (p["BytesDone"] - last[1]) / (now - last[0])
        elif p["ElapsedSeconds"] > 0:
            rate = p["BytesDone"] / p["ElapsedSeconds"]
        last = (now, p["BytesDone"])
        line = progress_line(p, rate)
        done = p["TransformJobStatus"] in TERMINAL or once
        end = "\n" if done or not out.isatty() else ""
        print(("\r" if out.isatty() else "") + line, end=end, file=out, flush=True)
        if done:
            if p["TransformJobStatus"] == "Failed":
                reason = sm.describe_transform_job(TransformJobName=name).get("FailureReason")
                print(f"Failed: {reason}", file=out)
            return 0
        time.sleep(interval)


def progress_line(p: dict[str, Any], rate: float) -> str:
    """One line: bar, percent of input bytes, records, bytes, rate, ETA, objects."""
    total, done = p["BytesTotal"], p["BytesDone"]
    fraction = done / total if total else (1.0 if p["TransformJobStatus"] in TERMINAL else 0.0)
    filled = int(round(fraction * BAR_WIDTH))
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    eta = "-" if rate <= 0 or total <= done else _clock((total - done) / rate)
    if p["TransformJobStatus"] in TERMINAL:
        eta = p["TransformJobStatus"]
    objects = f"{p['ObjectsDone']}/{p['ObjectsTotal']}"
    if p.get("ObjectsFailed"):
        objects += f" ({p['ObjectsFailed']} failed)"
    return (f"[{bar}] {fraction * 100:5.1f}%  records {p['RecordsDone']:,}  bytes "
            f"{_size(done)}/{_size(total)}  {_size(rate)}/s  ETA {eta}  objects {objects}")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
