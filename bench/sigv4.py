"""Median cost of one SigV4 verification (tideserve.api.sigv4.verify) for requests signed by
botocore: prints figures, never passes or fails on time. Run: .venv/bin/python bench/sigv4.py"""

from __future__ import annotations

import calendar
import statistics
import time
from datetime import datetime
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tideserve.api.sigv4 import verify

SECRETS = {"AKIDBENCH": "bench-secret"}


def signed(body: bytes, path: str) -> tuple[str, str, list[tuple[str, str]], float]:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8080{path}",
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    SigV4Auth(Credentials("AKIDBENCH", "bench-secret"), "sagemaker", "us-east-1").add_auth(request)
    prepared = request.prepare()
    headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in prepared.headers.items()]
    headers.append(("host", "127.0.0.1:8080"))
    when = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ")
    return urlsplit(prepared.url).path, "", headers, calendar.timegm(when.timetuple())


def median_us(body: bytes, path: str, rounds: int) -> float:
    raw_path, query, headers, now = signed(body, path)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify("POST", raw_path, query, headers, body, SECRETS.get, now)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    cases = [
        ("small body (64 B), plain path", b"x" * 64, "/endpoints/my-endpoint/invocations", 20000),
        ("small body, path needing re-encoding", b"x" * 64, "/endpoints/a%20b/invocations", 20000),
        ("64 KiB body", b"x" * 65536, "/endpoints/e/invocations", 2000),
        ("6 MiB body (InvokeEndpoint max)", b"x" * 6 * 1024 * 1024, "/endpoints/e/invocations", 50),
    ]
    for label, body, path, rounds in cases:
        print(f"{label:40s} median {median_us(body, path, rounds):9.1f} us per verify")


if __name__ == "__main__":
    main()
