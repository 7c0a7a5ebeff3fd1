"""A multi-container instance is sampled as one process tree, and each container's subtree
again under its ContainerName: real processes, as the front starts them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.metrics.system import CONTAINER_ENV, InstanceInfo, InstanceSampler

T0 = 1_700_000_040.0
# A front that starts two named containers (one holding ~40 MB more) and a helper of its own.
FRONT = f"""
import os, subprocess, sys, time
def start(name, code):
    env = dict(os.environ)
    if name:
        env[{CONTAINER_ENV!r}] = name
    return subprocess.Popen([sys.executable, '-c', code], env=env)
kids = [start('pre', 'import time; time.sleep(60)'),
        start('xgb', 'import time; b = bytearray(40 * 2**20); time.sleep(60)'),
        start(None, 'import time; time.sleep(60)')]
print(' '.join(str(k.pid) for k in kids), flush=True)
try:
    time.sleep(60)
finally:
    for k in kids:
        k.kill()
"""


@pytest.fixture
def front() -> Iterator[tuple[int, list[int]]]:
    proc = subprocess.Popen([sys.executable, "-c", FRONT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        kids = [int(p) for p in proc.stdout.readline().split()]
        yield proc.pid, kids
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def memory(agg: MetricAggregator, now: float) -> dict[tuple, float]:
    return {d.dimensions: d.maximum for d in agg.flush(now)
            if d.metric_name == names.MEMORY_UTILIZATION}


def test_each_container_is_also_recorded_under_its_name(front) -> None:
    pid, (pre, xgb, helper) = front
    limit = 4 * 2**30
    agg = MetricAggregator(60)
    sampler = InstanceSampler(agg)
    info = {"i-1": InstanceInfo(pid, 2, limit, "ep", "v")}
    sampler.sample(info, T0)
    sampler.sample(info, T0 + 1)
    got = memory(agg, T0 + 60)
    instance = dimensions(EndpointName="ep", VariantName="v")
    by_container = {c: got[dimensions(EndpointName="ep", VariantName="v", ContainerName=c)]
                    for c in ("pre", "xgb")}
    assert set(got) == {instance, *(dimensions(EndpointName="ep", VariantName="v",
                                               ContainerName=c) for c in ("pre", "xgb"))}
    rss = {p: psutil.Process(p).memory_info().rss for p in (pid, pre, xgb, helper)}
    assert by_container["xgb"] == pytest.approx(100 * rss[xgb] / limit, rel=0.2)
    assert by_container["xgb"] > by_container["pre"]  # its 40 MB are its own
    # The instance counts everything: the front, both containers and the unnamed helper.
    assert got[instance] == pytest.approx(100 * sum(rss.values()) / limit, rel=0.2)
    assert got[instance] > by_container["pre"] + by_container["xgb"]
