"""Cost of MetricAggregator.record on the hot path, in ns per call (no pass/fail).

The router records seven values per request (Invocations, InvocationsPerInstance, three error
counts, ModelLatency, OverheadLatency), so a request's metrics cost about 7x the figure.
Run: .venv/bin/python bench/metrics_record.py
"""

from __future__ import annotations

import random
import threading
import time

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions

N = 200_000


def bench(label: str, threads: int, with_timestamp: bool) -> None:
    agg = MetricAggregator(60)
    dims = dimensions(EndpointName="ep", VariantName="v1")
    latencies = [random.lognormvariate(8.0, 1.0) for _ in range(1000)]
    per_thread = N // threads
    t0 = 1_700_000_040.0

    def work() -> None:
        rec = agg.record
        for i in range(per_thread):
            if with_timestamp:
                rec(names.SAGEMAKER, names.MODEL_LATENCY, dims, latencies[i % 1000],
                    names.MICROSECONDS, timestamp=t0 + i * 1e-4)
            else:
                rec(names.SAGEMAKER, names.MODEL_LATENCY, dims, latencies[i % 1000],
                    names.MICROSECONDS)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter_ns()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter_ns() - start
    flush_start = time.perf_counter_ns()
    points = agg.flush(float("inf"))
    flush_ms = (time.perf_counter_ns() - flush_start) / 1e6
    print(f"{label:<38} {elapsed / (per_thread * threads):7.0f} ns/record   "
          f"flush {len(points)} periods in {flush_ms:.2f} ms")


if __name__ == "__main__":
    bench("1 thread, explicit timestamp", 1, True)
    bench("1 thread, clock timestamp", 1, False)
    bench("4 threads, clock timestamp (contended)", 4, False)
