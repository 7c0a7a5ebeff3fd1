"""Instance utilisation sampling with psutil on real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from tideserve.cost.catalog import Catalog
from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.metrics.system import InstanceInfo, InstanceSampler

T0 = 1_700_000_040.0
V1 = dimensions(EndpointName="ep", VariantName="v1")
# A parent that starts a sleeping child, prints the child's pid, then sleeps itself.
TREE = (
    "import subprocess, sys, time\n"
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(c.pid, flush=True)\n"
    "try:\n    time.sleep(60)\nfinally:\n    c.kill()\n"
)


@pytest.fixture
def tree() -> Iterator[tuple[int, int]]:
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        yield parent.pid, child
    finally:
        for proc in psutil.Process(parent.pid).children(recursive=True):
            proc.kill()
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


def by_name(agg: MetricAggregator, now: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for d in agg.flush(now):
        assert (d.namespace, d.dimensions, d.unit) == (names.ENDPOINT_INSTANCES, V1, "Percent")
        out.setdefault(d.metric_name, []).append(d.maximum)
    return out


def test_memory_covers_the_process_tree_and_cpu_starts_on_the_second_sample(tree) -> None:
    parent, child = tree
    limit = 4 * 2**30
    agg = MetricAggregator(60)
    sampler = InstanceSampler(agg)
    info = {"i-1": InstanceInfo(parent, 2, limit, "ep", "v1")}
    sampler.sample(info, T0)
    first = by_name(agg, T0 + 60)
    assert list(first) == [names.MEMORY_UTILIZATION]  # CPU is only primed
    tree_rss = psutil.Process(parent).memory_info().rss + psutil.Process(child).memory_info().rss
    assert first[names.MEMORY_UTILIZATION][0] == pytest.approx(100 * tree_rss / limit, rel=0.2)
    parent_only = 100 * psutil.Process(parent).memory_info().rss / limit
    assert first[names.MEMORY_UTILIZATION][0] > parent_only

    sampler.sample(info, T0 + 60)
    second = by_name(agg, T0 + 120)
    assert 0.0 <= second[names.CPU_UTILIZATION][0] <= 200.0


def test_controller_tuples_resolve_through_the_catalog_and_memory_is_clamped() -> None:
    catalog = Catalog.default()
    agg = MetricAggregator(60)
    sampler = InstanceSampler(agg, catalog)
    instance_type = catalog.names()[0]
    me = psutil.Process().pid
    sampler.sample({"i-1": (me, "ep", "v1", instance_type), "i-2": (me, "ep", "v1", "ml.nope")},
                   T0)
    [mem] = agg.flush(T0 + 60)
    assert mem.sample_count == 1  # the unknown instance type was skipped
    tiny = {"i-1": InstanceInfo(me, 1, 1, "ep", "v1")}  # a 1-byte "instance"
    sampler.sample(tiny, T0 + 60)
    assert by_name(agg, T0 + 120)[names.MEMORY_UTILIZATION] == [100.0]


def test_a_vanished_process_is_skipped() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait(timeout=10)
    agg = MetricAggregator(60)
    InstanceSampler(agg).sample({"i-1": InstanceInfo(done.pid, 1, 2**30, "ep", "v1")}, T0)
    assert agg.flush(T0 + 60) == []
