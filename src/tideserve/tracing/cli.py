"""`tideserve traces [ENDPOINT] [--slowest] [--limit N] [--trace-id ID] [--json]`: the
server's kept traces as span trees, a thin client of GET /tideserve/traces (api/traces.py),
signed with the credentials `tideserve up` wrote, as every other command is."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tideserve.client import default_url, session
from tideserve.tracing.view import render

PATH = "/tideserve/traces"
SIGNING_NAME = "sagemaker"  # as tideserve's other routes of its own


def add_traces_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "traces", help="recent invocations as span trees with durations (no collector needed)")
    p.add_argument("endpoint", nargs="?", help="only this endpoint's traces")
    p.add_argument("--slowest", action="store_true", help="longest first (default: newest)")
    p.add_argument("--limit", type=int, default=5, help="traces to print (default 5)")
    p.add_argument("--trace-id", help="one trace, by its 32-hex-digit id")
    p.add_argument("--json", action="store_true", help="print the route's JSON instead")
    p.add_argument("--url", default=default_url())
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--region", default="us-east-1")
    return p


def fetch_traces(url: str, state_dir: Path | str, region: str = "us-east-1",
                 credentials: Credentials | None = None, **query: Any) -> dict[str, Any]:
    """GET /tideserve/traces with `query` (endpoint, slowest, limit, trace_id), signed with
    `credentials` (default: the server's credentials file in `state_dir`)."""
    params = {k: str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in query.items() if v not in (None, False)}
    target = url.rstrip("/") + PATH + ("?" + urlencode(params) if params else "")
    credentials = credentials or session(state_dir, region).get_credentials()
    if credentials is None:
        raise RuntimeError("no credentials: pass --state-dir of the server, or set "
                           "AWS_SHARED_CREDENTIALS_FILE")
    request = AWSRequest(method="GET", url=target)
    SigV4Auth(credentials, SIGNING_NAME, region).add_auth(request)
    prepared = urllib.request.Request(target, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise RuntimeError(f"{exc.code} from {PATH}: {detail}") from None


def run_traces(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    answer = fetch_traces(args.url, args.state_dir, args.region, endpoint=args.endpoint,
                          slowest=args.slowest, limit=args.limit, trace_id=args.trace_id)
    if args.json:
        print(json.dumps(answer, indent=2), file=out)
    else:
        print(render(answer["Traces"]), file=out)
    return 0
