"""The multi-model instance's caches, through their public calls, with archives that are
directories of known sizes and a loader that records what it loads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tideserve.serving.model_cache import (
    Budgets,
    CacheError,
    ModelCache,
    ModelLoadFailed,
    ModelTooLarge,
    check_target_model,
)

KB = 1024


class Archives:
    """fetch(): the archive `<name>` unpacks to one file of sizes[name] bytes."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.fetched: list[str] = []

    def __call__(self, target: str, dest: Path) -> Path:
        if target not in self.sizes:
            raise CacheError(f"Failed to download model data(key: {target}).")
        self.fetched.append(target)
        dest.mkdir(parents=True)
        (dest / "weights").write_bytes(b"x" * self.sizes[target])
        return dest


def cache_of(tmp_path: Path, sizes: dict[str, int], memory: int, disk: int = 10**9,
             load=None, keep_loaded: bool = True) -> tuple[ModelCache, Archives, list[str]]:
    archives = Archives(sizes)
    loaded: list[str] = []

    def default_load(model_dir: Path) -> str:
        loaded.append(model_dir.parent.name)
        return f"runtime of {model_dir}"

    cache = ModelCache(archives, tmp_path, Budgets(memory, disk), load or default_load,
                       keep_loaded)
    return cache, archives, loaded


def use(cache: ModelCache, target: str):
    model, stats = cache.acquire(target)
    cache.release(model)
    return stats


def test_a_second_request_hits_the_loaded_model(tmp_path: Path) -> None:
    cache, archives, loaded = cache_of(tmp_path, {"a.tar.gz": 10 * KB}, memory=100 * KB)
    first = use(cache, "a.tar.gz")
    second = use(cache, "a.tar.gz")
    assert (first.hit, second.hit) == (False, True)
    assert first.download_us > 0 and first.load_us > 0 and first.wait_us > 0
    assert second.download_us == second.load_us == second.wait_us == 0
    assert archives.fetched == ["a.tar.gz"] and len(loaded) == 1
    assert second.loaded == 1


def test_the_least_recently_used_idle_model_is_unloaded_when_a_new_one_does_not_fit(
        tmp_path: Path) -> None:
    sizes = {"a": 40 * KB, "b": 40 * KB, "c": 40 * KB}
    cache, archives, _ = cache_of(tmp_path, sizes, memory=100 * KB)
    use(cache, "a")
    use(cache, "b")
    use(cache, "a")  # b is now the least recently used
    stats = use(cache, "c")
    assert len(stats.unload_us) == 1
    assert sorted(m.target for m in cache.loaded()) == ["a", "c"]
    assert cache.evictions == 1
    # b's archive stayed on disk: loading it again needs no download.
    again = use(cache, "b")
    assert not again.hit and again.download_us == 0 and again.load_us > 0
    assert archives.fetched == ["a", "b", "c"]


def test_a_model_in_use_is_never_evicted(tmp_path: Path) -> None:
    cache, _, _ = cache_of(tmp_path, {"a": 60 * KB, "b": 60 * KB}, memory=100 * KB)
    busy, _ = cache.acquire("a")
    use(cache, "b")  # does not fit beside a, but a is serving a request
    assert sorted(m.target for m in cache.loaded()) == ["a", "b"]
    cache.release(busy)
    use(cache, "a")


def test_a_model_larger_than_the_budget_is_refused_and_the_others_stay(tmp_path: Path) -> None:
    cache, _, loaded = cache_of(tmp_path, {"small": 10 * KB, "huge": 200 * KB}, memory=100 * KB)
    use(cache, "small")
    with pytest.raises(ModelTooLarge, match="needs 204800 bytes of memory, more than the 102400"):
        cache.acquire("huge")
    assert [m.target for m in cache.loaded()] == ["small"] and len(loaded) == 1
    assert use(cache, "small").hit


def test_a_model_that_fails_to_load_fails_only_its_own_requests(tmp_path: Path) -> None:
    def load(model_dir: Path) -> str:
        if (model_dir / "weights").stat().st_size == 13:
            raise RuntimeError("unpickling error")
        return "ok"

    cache, _, _ = cache_of(tmp_path, {"good": 10, "broken": 13}, memory=100 * KB, load=load)
    with pytest.raises(ModelLoadFailed, match="Failed to load model broken: RuntimeError: "
                                              "unpickling error"):
        cache.acquire("broken")
    assert use(cache, "good").loaded == 1
    with pytest.raises(ModelLoadFailed):  # not cached as loaded: tried again, fails again
        cache.acquire("broken")


def test_concurrent_first_requests_for_one_cold_model_load_it_once(tmp_path: Path) -> None:
    started = threading.Event()

    def slow_load(model_dir: Path) -> str:
        started.set()
        time.sleep(0.2)
        return "model"

    cache, archives, _ = cache_of(tmp_path, {"cold": 10}, memory=100 * KB, load=slow_load)
    results = []

    def request() -> None:
        results.append(use(cache, "cold"))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.loads == 1 and archives.fetched == ["cold"]
    assert sum(1 for s in results if s.load_us > 0) == 1
    waited = [s for s in results if not s.hit]
    assert all(s.wait_us > 0 for s in waited)


def test_with_the_cache_disabled_each_model_is_unloaded_after_its_request(tmp_path: Path) -> None:
    cache, _, loaded = cache_of(tmp_path, {"a": 10}, memory=100 * KB, keep_loaded=False)
    use(cache, "a")
    assert cache.loaded() == []
    assert not use(cache, "a").hit and len(loaded) == 2


def test_unloaded_archives_leave_the_disk_when_it_is_over_budget(tmp_path: Path) -> None:
    sizes = {"a": 40 * KB, "b": 40 * KB, "c": 40 * KB}
    cache, archives, _ = cache_of(tmp_path, sizes, memory=50 * KB, disk=100 * KB)
    for name in ("a", "b", "c"):
        use(cache, name)
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert len(on_disk) == 2  # a was neither loaded nor recent: its tree is gone
    use(cache, "a")
    assert archives.fetched == ["a", "b", "c", "a"]


@pytest.mark.parametrize("target, ok", [
    ("client-017.tar.gz", True),
    ("tenant1/model-a.tar.gz", True),
    ("../x", False),
    ("a/../../x", False),
    ("/etc/passwd", False),
    ("a//b.tar.gz", False),
    ("./a.tar.gz", False),
    (" leading-space", False),
    ("x" * 1025, False),
    ("", False),
])
def test_a_target_model_is_a_clean_relative_path(target: str, ok: bool) -> None:
    assert (check_target_model(target) is None) == ok
