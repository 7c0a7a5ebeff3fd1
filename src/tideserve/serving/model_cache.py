"""A multi-model instance's two caches: models loaded in memory, under a byte budget, and their
unpacked archives on disk, under a disk budget. Both evict least-recently-used entries that no
request is using when a new model does not fit (AWS names no victim rule; LRU is the usual
emulation, spec §1.3).

    cache = ModelCache(source, disk_root, budgets, load=lambda d: load_runtime(d, "sklearn", env))
    model, stats = cache.acquire("client-017.tar.gz")   # blocking: run it in a thread
    try:
        model.runtime.invoke(...)
    finally:
        cache.release(model)

What a model costs. The memory budget counts each loaded model's unpacked size on disk: a
deterministic figure known before loading, and for the serialized formats tideserve serves
(skops/joblib, XGBoost JSON/UBJ, ONNX, TorchScript) within a small factor of what the loaded
model holds. RSS growth across a load was considered and rejected: with predictions and other
loads running in the same process, and the allocator reusing freed arenas, the growth seen
during one small model's load says little about that model. A model larger than the whole
budget is refused (ModelTooLarge) before anything is loaded; a model that does not fit evicts
others first. Models in use by a request are never evicted: with every loaded model busy a
new one is loaded anyway, over budget by at most the number of prediction threads' models,
rather than failing a request.

Concurrency: one lock guards the tables (held for dictionary work only); each model has its
own load lock, so concurrent first requests for the same cold model download and load it once
while other models load in parallel.

Traced requests (the thread runs in the request's context, multi_model.py) get a span per
step: `model download` (the archive fetched and unpacked), `model load` (the runtime loading
it; TargetModel, bytes, and whether the archive came from the disk cache), `model unload` for
each model evicted for it, and `model load wait` when another request was already loading
the same model. A hit in memory opens no span; the lookup's outcome is on the caller's span.

Standard library and the tracing API only at import: the instance limits numeric threads
before numpy loads.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideserve.tracing import span

log = logging.getLogger("tideserve.instance.models")

MAX_TARGET_MODEL_CHARS = 1024  # botocore sagemaker-runtime TargetModelHeader
TARGET_ATTRIBUTE = "tideserve.target_model"
# hit: loaded already; disk: loaded from the archive unpacked earlier; miss: downloaded first
CACHE_ATTRIBUTE = "tideserve.model_cache"


class CacheError(Exception):
    """A request's model cannot be served; `code` is the runtime error code the router sends
    (ValidationError: the client's fault; ModelError: the model's own)."""

    code = "ValidationError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelTooLarge(CacheError):
    pass


class ModelLoadFailed(CacheError):
    code = "ModelError"


def model_key(target: str) -> str:
    """The opaque name a model is cached under (SageMaker's look like an MD5 of the target)."""
    return hashlib.md5(target.encode("utf-8"), usedforsecurity=False).hexdigest()


def check_target_model(target: str) -> str | None:
    """Why `target` is not a usable path relative to the ModelDataUrl prefix; None if it is."""
    if not target or len(target) > MAX_TARGET_MODEL_CHARS:
        return f"it must be 1 to {MAX_TARGET_MODEL_CHARS} characters"
    if not target.isprintable() or target[0].isspace():
        return "it must be printable characters and must not start with whitespace"
    if target.startswith("/") or "\\" in target:
        return "it must be a relative path with '/' separators"
    if any(part in ("", ".", "..") for part in target.split("/")):
        return "it must not contain empty, '.' or '..' path segments"
    return None


@dataclass(frozen=True)
class Budgets:
    memory_bytes: int  # loaded models' sizes together
    disk_bytes: int  # unpacked archives together


@dataclass
class LoadedModel:
    key: str
    target: str
    runtime: Any
    size: int  # bytes counted against the memory budget
    in_use: int = 0


@dataclass
class LoadStats:
    """What one request's model lookup cost, in microseconds (0: that step did not run)."""

    hit: bool = False
    wait_us: float = 0.0  # ModelLoadingWaitTime: download and/or load this request waited on
    download_us: float = 0.0
    load_us: float = 0.0
    unload_us: list[float] = field(default_factory=list)  # one per model evicted for it
    loaded: int = 0  # models loaded after this lookup (LoadedModelCount's sample)

    def header(self) -> str:
        """The compact form the router reads (X-Tideserve-Multi-Model)."""
        unloads = ",".join(f"{u:.0f}" for u in self.unload_us)
        return (f"hit={int(self.hit)};wait={self.wait_us:.0f};download={self.download_us:.0f};"
                f"load={self.load_us:.0f};unload={unloads};loaded={self.loaded}")


# fetch(target, dest) materialises the archive for `target` as the directory `dest`.
Fetch = Callable[[str, Path], Path]
Load = Callable[[Path], Any]


class ModelCache:
    def __init__(self, fetch: Fetch, disk_root: Path, budgets: Budgets, load: Load,
                 keep_loaded: bool = True) -> None:
        self.fetch = fetch
        self.disk_root = disk_root
        self.budgets = budgets
        self.load = load
        # MultiModelConfig.ModelCacheSetting=Disabled: unload each model after its request.
        self.keep_loaded = keep_loaded
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # LRU first
        self._on_disk: OrderedDict[str, int] = OrderedDict()  # key -> unpacked bytes, LRU first
        self._load_locks: dict[str, threading.Lock] = {}
        self.loads = 0
        self.evictions = 0

    # -- the request path ------------------------------------------------------------------

    def acquire(self, target: str) -> tuple[LoadedModel, LoadStats]:
        """The loaded model for `target`, counted in use until `release`. Raises CacheError."""
        key = model_key(target)
        stats = LoadStats()
        with self._lock:
            model = self._use(key)
            if model is not None:
                stats.hit, stats.loaded = True, len(self._loaded)
                return model, stats
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        t0 = time.perf_counter()
        with self._load_lock(load_lock, target):
            with self._lock:
                model = self._use(key)  # another request loaded it while this one waited
            if model is None:
                try:
                    model = self._load(key, target, stats)
                except CacheError:
                    # A target that cannot be served keeps no lock: random names from a
                    # client must not grow the table.
                    with self._lock:
                        self._load_locks.pop(key, None)
                    raise
        stats.wait_us = (time.perf_counter() - t0) * 1e6
        stats.loaded = len(self._loaded)
        return model, stats

    @staticmethod
    @contextmanager
    def _load_lock(lock: threading.Lock, target: str) -> Iterator[None]:
        """The model's load lock; the time spent waiting for another request's load of it is
        a `model load wait` span."""
        if not lock.acquire(blocking=False):
            with span("model load wait", {TARGET_ATTRIBUTE: target}):
                lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def release(self, model: LoadedModel) -> None:
        with self._lock:
            model.in_use -= 1
            drop = not self.keep_loaded and model.in_use == 0 and model.key in self._loaded
            if drop:
                del self._loaded[model.key]
        if drop:
            self._unload(model)

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._loaded.values())

    def memory_used(self) -> int:
        with self._lock:
            return sum(m.size for m in self._loaded.values())

    # -- loading and evicting --------------------------------------------------------------

    def _use(self, key: str) -> LoadedModel | None:
        model = self._loaded.get(key)
        if model is not None:
            self._loaded.move_to_end(key)
            model.in_use += 1
        return model

    def _load(self, key: str, target: str, stats: LoadStats) -> LoadedModel:
        model_dir = self._on_disk_dir(key, target, stats)
        size = self._on_disk[key]
        budget = self.budgets.memory_bytes
        if size > budget:
            raise ModelTooLarge(
                f"Model {target} needs {size} bytes of memory, more than the {budget} bytes "
                "this instance's model cache holds. Use an instance type with more memory "
                "(or raise TIDESERVE_MODEL_CACHE_MEMORY_MB)."
            )
        for victim in self._victims(size, budget):
            stats.unload_us.append(self._unload(victim))
        t0 = time.perf_counter()
        attributes: dict[str, str | int] = {
            TARGET_ATTRIBUTE: target, "tideserve.bytes": size,
            CACHE_ATTRIBUTE: "miss" if stats.download_us else "disk"}
        try:
            with span("model load", attributes):
                runtime = self.load(model_dir)
        except Exception as exc:  # the model's own failure: only its requests fail
            text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.error("cannot load model %s: %s", target, text, exc_info=exc)
            raise ModelLoadFailed(f"Failed to load model {target}: {text}") from None
        stats.load_us = (time.perf_counter() - t0) * 1e6
        model = LoadedModel(key, target, runtime, size, in_use=1)
        with self._lock:
            self._loaded[key] = model
            self.loads += 1
        log.info("loaded model %s (%d bytes) in %.0f ms", target, size, stats.load_us / 1000)
        return model

    def _victims(self, size: int, budget: int) -> list[LoadedModel]:
        """The least recently used idle models to unload so that `size` more bytes fit."""
        with self._lock:
            used = sum(m.size for m in self._loaded.values())
            victims = []
            for model in list(self._loaded.values()):
                if used + size <= budget:
                    break
                if model.in_use == 0:
                    del self._loaded[model.key]
                    victims.append(model)
                    used -= model.size
            if used + size > budget:
                log.warning("every loaded model is in use: loading past the memory budget")
            self.evictions += len(victims)
            return victims

    def _unload(self, model: LoadedModel) -> float:
        """Drop the model's last reference (the tables no longer hold it); its archive stays
        on disk, so loading it again needs no download. Returns microseconds taken."""
        t0 = time.perf_counter()
        # Reference counting frees the model here; no gc.collect(): a full collection over a
        # heap holding a framework takes ~50-100 ms with the GIL held, stalling every request.
        with span("model unload", {TARGET_ATTRIBUTE: model.target,
                                   "tideserve.bytes": model.size}):
            model.runtime = None
        elapsed = (time.perf_counter() - t0) * 1e6
        log.info("unloaded model %s", model.target)
        return elapsed

    def _on_disk_dir(self, key: str, target: str, stats: LoadStats) -> Path:
        dest = self.disk_root / key / "model"
        with self._lock:
            present = key in self._on_disk
            if present:
                self._on_disk.move_to_end(key)
        if present:
            return dest
        t0 = time.perf_counter()
        with span("model download", {TARGET_ATTRIBUTE: target}) as downloading:
            self.fetch(target, dest)
            size = _tree_bytes(dest)
            downloading.set_attribute("tideserve.bytes", size)
        stats.download_us = (time.perf_counter() - t0) * 1e6
        with self._lock:
            self._on_disk[key] = size
        self._trim_disk(keep=key)
        return dest

    def _trim_disk(self, keep: str) -> None:
        """Delete unpacked archives of models not loaded, oldest first, while over budget."""
        with self._lock:
            total = sum(self._on_disk.values())
            doomed = []
            for key, size in list(self._on_disk.items()):
                if total <= self.budgets.disk_bytes:
                    break
                if key != keep and key not in self._loaded:
                    del self._on_disk[key]
                    doomed.append(key)
                    total -= size
        for key in doomed:
            shutil.rmtree(self.disk_root / key, ignore_errors=True)


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
