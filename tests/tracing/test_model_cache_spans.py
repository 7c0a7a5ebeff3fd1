"""A multi-model instance's lookups as spans of the traced request that made them: a cold
model is `model download` then `model load`, an eviction is `model unload`, a model whose
archive is still on disk loads without a download, and a request that finds another one
loading its model waits in `model load wait`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.serving.test_model_cache import KB, cache_of
from tideserve.tracing import current_context, run_in, spans
from tideserve.tracing.store import RecentTraces


def traced_lookup(store: RecentTraces, cache, target: str) -> dict[str, dict]:
    """Acquire and release `target` in a request's trace; its spans by name (attributes)."""
    with spans.server_span("instance /invocations", {}) as root:
        model, _ = cache.acquire(target)
        cache.release(model)
    trace = store.get(root.get_span_context().trace_id)
    assert trace is not None
    return {s.name: dict(s.attributes or {}) for s in trace.spans
            if s.name != "instance /invocations"}


def test_cold_loads_evictions_and_reloads_from_disk_are_spans(tmp_path: Path, store) -> None:
    cache, _, _ = cache_of(tmp_path, {"a.tar.gz": 3 * KB, "b.tar.gz": 3 * KB}, memory=4 * KB)

    cold = traced_lookup(store, cache, "a.tar.gz")
    assert set(cold) == {"model download", "model load"}
    assert cold["model download"] == {"tideserve.target_model": "a.tar.gz",
                                      "tideserve.bytes": 3 * KB}
    assert cold["model load"] == {"tideserve.target_model": "a.tar.gz",
                                  "tideserve.bytes": 3 * KB, "tideserve.model_cache": "miss"}

    assert traced_lookup(store, cache, "a.tar.gz") == {}  # a hit: nothing to load

    evicting = traced_lookup(store, cache, "b.tar.gz")  # a and b do not fit together
    assert set(evicting) == {"model download", "model unload", "model load"}
    assert evicting["model unload"]["tideserve.target_model"] == "a.tar.gz"

    from_disk = traced_lookup(store, cache, "a.tar.gz")  # its archive is still unpacked
    assert set(from_disk) == {"model unload", "model load"}
    assert from_disk["model load"]["tideserve.model_cache"] == "disk"


def test_a_request_that_finds_its_model_loading_waits_in_a_span(tmp_path: Path,
                                                                 store) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_load(model_dir: Path) -> str:
        started.set()
        release.wait(5)
        return "runtime"

    cache, _, _ = cache_of(tmp_path, {"a.tar.gz": KB}, memory=4 * KB, load=slow_load)
    first = threading.Thread(target=lambda: cache.release(cache.acquire("a.tar.gz")[0]))
    first.start()
    assert started.wait(5)
    with spans.server_span("instance /invocations", {}) as root:
        context = current_context()
        waiter = threading.Thread(target=run_in, args=(context, cache.acquire, "a.tar.gz"))
        waiter.start()
        time.sleep(0.1)  # the waiter reaches the load lock the first request holds
        release.set()
        waiter.join(5)
    first.join(5)
    trace = store.get(root.get_span_context().trace_id)
    assert trace is not None
    names = sorted(s.name for s in trace.spans)
    assert names == ["instance /invocations", "model load wait"]
