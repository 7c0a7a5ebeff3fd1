"""What authorisation adds to one InvokeEndpoint: the gate's decision for
sagemaker:InvokeEndpoint on the endpoint's ARN (tideserve.access.gate.Gate.authorize), on a
cache hit (every request after the first for a key and endpoint) and on a miss (the first,
or the first after an IAM change), for an admin key and an invoke-only key, over a real
SQLite IAM directory. Prints medians; never passes or fails on time.
Run: .venv/bin/python bench/authorize.py"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tideserve.access.directory import Directory
from tideserve.access.gate import Gate
from tideserve.access.presets import preset_policy
from tideserve.control.access_keys import AccessKeys
from tideserve.control.secret_box import SecretBox
from tideserve.db import make_engine, sqlite_url
from tideserve.schema import create_all

NOW = 1_700_000_000.0
PARAMS = {"EndpointName": "Churn-Model"}


def median_us(fn, rounds: int, batch: int = 1000) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(sqlite_url(Path(tmp)))
        create_all(engine)
        keys = AccessKeys(engine, SecretBox.from_key_file(Path(tmp) / "secret.key"))
        admin, _ = keys.create("admin", NOW)
        directory = Directory(engine, keys, "123456789012")
        directory.adopt_key_owners(NOW)
        directory.create_user("app", "/", NOW)
        directory.put_policy("app", "invoke", preset_policy("invoke-only", ["churn-model"]))
        invoker, _ = directory.create_key("app", NOW)
        gate = Gate(directory, "us-east-1", "123456789012")
        for name, key in (("admin", admin), ("invoke-only", invoker.access_key_id)):
            def hit(key: str = key) -> None:
                gate.authorize(key, "sagemaker-runtime", "InvokeEndpoint", PARAMS)

            def miss(key: str = key) -> None:
                gate.forget()
                gate.authorize(key, "sagemaker-runtime", "InvokeEndpoint", PARAMS)
            hit()
            print(f"{name:12s} cache hit  {median_us(hit, 20):8.2f} us per request")
            print(f"{name:12s} cache miss {median_us(miss, 5, 50):8.1f} us (first request "
                  "after an IAM change: principal read from the database, policy evaluated)")


if __name__ == "__main__":
    main()
