"""Median cost of one SigV4 verification (tideserve.api.sigv4.verify) for requests signed by
botocore, and what the body-hash check (the signature covers the body's SHA-256) costs per MB,
whole or hashed chunk by chunk as it streams in: prints figures, never passes or fails on time.
Run: .venv/bin/python bench/sigv4.py"""

from __future__ import annotations

import calendar
import statistics
import time
from datetime import datetime
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tideserve.api.sigv4 import PayloadHash, check_headers, verify, verify_payload

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


def body_hash_us_per_mb(size: int, rounds: int, chunk: int | None) -> tuple[float, float]:
    """(median µs per MB for check_headers alone, for the whole verify): the difference is
    the body-hash check. `chunk`: feed a PayloadHash in pieces of this size, as read_body does
    with the ASGI server's messages (uvicorn: 64 KiB), instead of hashing the bytes at once."""
    body = b"x" * size
    raw_path, query, headers, now = signed(body, "/endpoints/e/invocations")
    headers_only, whole = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        pending = check_headers("POST", raw_path, query, headers, SECRETS.get, now)
        middle = time.perf_counter()
        if chunk is None:
            verify_payload(pending, body)
        else:
            digest = PayloadHash()
            view = memoryview(body)
            for offset in range(0, size, chunk):
                digest.update(view[offset : offset + chunk])
            verify_payload(pending, digest=digest.hexdigest())
        end = time.perf_counter()
        headers_only.append(middle - start)
        whole.append(end - start)
    mb = size / 1e6
    return statistics.median(headers_only) * 1e6 / mb, statistics.median(whole) * 1e6 / mb


def main() -> None:
    cases = [
        ("small body (64 B), plain path", b"x" * 64, "/endpoints/my-endpoint/invocations", 20000),
        ("small body, path needing re-encoding", b"x" * 64, "/endpoints/a%20b/invocations", 20000),
        ("64 KiB body", b"x" * 65536, "/endpoints/e/invocations", 2000),
        ("6 MiB body (InvokeEndpoint max)", b"x" * 6 * 1024 * 1024, "/endpoints/e/invocations", 50),
    ]
    for label, body, path, rounds in cases:
        print(f"{label:40s} median {median_us(body, path, rounds):9.1f} us per verify")
    print("body-hash check (verify minus check_headers), per MB of body:")
    for label, size, chunk in [
        ("1 MiB, hashed whole", 1 << 20, None),
        ("6 MiB, hashed whole", 6 << 20, None),
        ("6 MiB, streamed in 64 KiB chunks", 6 << 20, 65536),
    ]:
        headers_only, whole = body_hash_us_per_mb(size, 50, chunk)
        print(f"{label:40s} {whole - headers_only:9.1f} us/MB")


if __name__ == "__main__":
    main()
