"""The multi-model instance: many models behind one container contract, each chosen per request
by `X-Amzn-SageMaker-Target-Model`, a path relative to the model's ModelDataUrl prefix.

The instance process (serving/instance.py) becomes one when its environment names the prefix
(the control plane sets these for a `Mode: MultiModel` container):

    SAGEMAKER_MULTI_MODEL=true               AWS sets it for a multi-model container
    TIDESERVE_MULTI_MODEL_URL                the ModelDataUrl prefix, as the user wrote it
    TIDESERVE_MULTI_MODEL_SOURCE             where it is read: the same s3:// URL in the
                                             embedded store, or the external store's URL
    TIDESERVE_MULTI_MODEL_OBJECT_ROOT        the embedded store's directory (embedded only)
    TIDESERVE_MULTI_MODEL_STORAGE_OPTIONS    fsspec options of an external store (JSON; taken
                                             out of the environment before any model loads)
    TIDESERVE_INSTANCE_MEMORY_BYTES          the instance type's memory (the fleet sets it)
    TIDESERVE_MAX_MODEL_BYTES                one archive's unpacked limit (--max-model-size)
    TIDESERVE_MODEL_CACHE_SETTING            MultiModelConfig.ModelCacheSetting (Enabled)

and a user may set, in the container's Environment:

    TIDESERVE_MODEL_CACHE_MEMORY_MB   the loaded models' budget, instead of the instance
                                      type's memory less what the runtime keeps
    TIDESERVE_MODEL_CACHE_DISK_MB     the unpacked archives' budget (default 30 GB, the
                                      ML storage volume of a SageMaker instance)

The memory budget: the instance type's memory less max(1 GiB, 25 %) kept for the runtime (the
interpreter and framework, ~0.3-1 GB, the request buffers and the predictions' own memory);
an ml.m5.large (8 GiB) holds 6 GiB of models, an ml.t2.medium (4 GiB) 3 GiB.

Answers: 200 with the model's answer and `X-Tideserve-Multi-Model` (the lookup's cost, see
model_cache.LoadStats.header) for the router's metrics; on a request the instance cannot
serve, `X-Tideserve-Error: <runtime error code>` with the message as the body (400
ValidationError: bad or missing target, archive missing or broken, model too large; 500
ModelError: the model failed to load; 429 ModelNotReadyException: still loading after
LOAD_WAIT_SECONDS, the load goes on and a retry finds it). `GET /models` lists what is loaded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from opentelemetry.trace import get_current_span

from tideserve.serving.abandonable import AbandonableWork, Abandoned
from tideserve.serving.instance import (
    InstanceApp,
    Receive,
    Scope,
    Send,
    _read_body,
    _respond,
    _timeout,
    _traced_invoke,
)
from tideserve.serving.model_cache import (
    CACHE_ATTRIBUTE,
    TARGET_ATTRIBUTE,
    Budgets,
    CacheError,
    LoadedModel,
    LoadStats,
    ModelCache,
    check_target_model,
)
from tideserve.tracing import current_context, failed, failed_with, run_in

log = logging.getLogger("tideserve.instance")

MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
URL_ENV = "TIDESERVE_MULTI_MODEL_URL"
SOURCE_ENV = "TIDESERVE_MULTI_MODEL_SOURCE"
OBJECT_ROOT_ENV = "TIDESERVE_MULTI_MODEL_OBJECT_ROOT"
STORAGE_OPTIONS_ENV = "TIDESERVE_MULTI_MODEL_STORAGE_OPTIONS"
MEMORY_ENV = "TIDESERVE_INSTANCE_MEMORY_BYTES"
MAX_MODEL_ENV = "TIDESERVE_MAX_MODEL_BYTES"
CACHE_SETTING_ENV = "TIDESERVE_MODEL_CACHE_SETTING"
CACHE_MEMORY_MB_ENV = "TIDESERVE_MODEL_CACHE_MEMORY_MB"
CACHE_DISK_MB_ENV = "TIDESERVE_MODEL_CACHE_DISK_MB"

STATS_HEADER = "X-Tideserve-Multi-Model"
ERROR_HEADER = "X-Tideserve-Error"
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
_TARGET = TARGET_MODEL_HEADER.lower().encode()
_CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"

RUNTIME_RESERVE_MIN_BYTES = 2**30
RUNTIME_RESERVE_FRACTION = 0.25
DEFAULT_DISK_BYTES = 30 * 10**9
DEFAULT_MEMORY_BYTES = 8 * 2**30  # an instance started without a type: an ml.m5.large's
# SageMaker answers ModelNotReadyException after 60 s of download and load; ours stays under
# the router's 55 s model timeout so the client gets that answer, not a timeout.
LOAD_WAIT_SECONDS = 50.0


def is_multi_model(env: Mapping[str, str]) -> bool:
    return bool(env.get(URL_ENV))


def budgets_from(env: Mapping[str, str]) -> Budgets:
    memory = int(env.get(MEMORY_ENV) or DEFAULT_MEMORY_BYTES)
    reserve = max(RUNTIME_RESERVE_MIN_BYTES, int(memory * RUNTIME_RESERVE_FRACTION))
    budget = max(0, memory - reserve)
    if env.get(CACHE_MEMORY_MB_ENV):
        budget = int(float(env[CACHE_MEMORY_MB_ENV]) * 2**20)
    disk = DEFAULT_DISK_BYTES
    if env.get(CACHE_DISK_MB_ENV):
        disk = int(float(env[CACHE_DISK_MB_ENV]) * 2**20)
    return Budgets(memory_bytes=budget, disk_bytes=disk)


def join_target(prefix: str, target: str) -> str:
    """prefix + target, one '/' between (AWS's join rule for a prefix without a trailing '/'
    is not documented; spec §1.2)."""
    return prefix.rstrip("/") + "/" + target.lstrip("/")


def archive_fetcher(env: Mapping[str, str], storage_options: Mapping[str, Any]) -> Any:
    """fetch(target, dest): the archive under the prefix, unpacked at `dest`, or CacheError in
    the words SageMaker uses for the same failures."""
    from tideserve.errors import NotFoundError, ValidationError
    from tideserve.serving.archive import DEFAULT_MAX_MODEL_BYTES, fetch_model_data

    shown, source = env[URL_ENV], env.get(SOURCE_ENV) or env[URL_ENV]
    root = Path(env[OBJECT_ROOT_ENV]) if env.get(OBJECT_ROOT_ENV) else None
    max_bytes = int(env.get(MAX_MODEL_ENV) or DEFAULT_MAX_MODEL_BYTES)

    def fetch(target: str, dest: Path) -> Path:
        where = _bucket_key(join_target(shown, target))
        try:
            return fetch_model_data(join_target(source, target), dest, root, storage_options,
                                    max_bytes)
        except NotFoundError:
            raise CacheError(
                f"Failed to download model data({where}). Please ensure that there is an "
                "object located at the URL and that the role passed to CreateModel has "
                "permissions to download the model."
            ) from None
        except ValidationError as exc:
            raise CacheError(f"Failed to extract model data({where}): {exc.message}") from None
        except OSError as exc:
            raise CacheError(f"Failed to download model data({where}): {exc}") from None

    return fetch


def _bucket_key(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return f"bucket: {parsed.netloc}, key: {parsed.path.lstrip('/')}"
    return f"url: {url}"


class MultiModelApp(InstanceApp):
    """/ping, /invocations (per TargetModel), /models and /execution-parameters."""

    def __init__(self, cache: ModelCache, threads: int, max_payload_bytes: int,
                 max_async_payload_bytes: int | None = None, token: str | None = None) -> None:
        super().__init__(_Named("multi-model"), threads, max_payload_bytes,
                         max_async_payload_bytes, token)
        self.cache = cache
        # Downloads and loads wait on disk and network: their own threads, so a cold model
        # never holds up predictions of loaded ones.
        self.loaders = ThreadPoolExecutor(max(2, threads), thread_name_prefix="load")
        self.load_wait_s = LOAD_WAIT_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == "/models"
                and scope["method"] == "GET"):
            await self.list_models(scope, send)
            return
        await super().__call__(scope, receive, send)

    async def list_models(self, scope: Scope, send: Send) -> None:
        from tideserve.serving.instance import _NOT_FROM_ROUTER, _TEXT, _carries

        if self.token is not None and not _carries(scope, self.token):
            await _respond(send, 403, _NOT_FROM_ROUTER, _TEXT)
            return
        models = [{"modelName": m.key, "targetModel": m.target, "sizeBytes": m.size}
                  for m in self.cache.loaded()]
        body = json.dumps({"models": models, "memoryBudgetBytes": self.cache.budgets.memory_bytes,
                           "loads": self.cache.loads, "evictions": self.cache.evictions})
        await _respond(send, 200, body.encode(), [(b"content-type", b"application/json")])

    async def _invocations(self, scope: Scope, receive: Receive, send: Send,
                           headers: dict[bytes, bytes]) -> None:
        # Under the base class's `instance /invocations` span when the request is traced.
        target = headers.get(_TARGET, b"").decode("utf-8", "replace")
        why = check_target_model(target)
        if why is not None:
            await _refuse(send, 400, "ValidationError",
                          f"TargetModel {target!r} is not valid: {why}.")
            return
        limit = self.body_limit(headers)
        body = await _read_body(receive, limit)
        if body is None:
            await _respond(send, 413, self._too_large(limit),
                           [(b"content-type", b"text/plain; charset=utf-8")])
            return
        loop = asyncio.get_running_loop()
        handoff = _Handoff(self.cache)
        traced = current_context()  # the loader thread's spans join the request's trace
        current = get_current_span()
        current.set_attribute(TARGET_ATTRIBUTE, target)
        lookup = loop.run_in_executor(self.loaders, run_in, traced, handoff.acquire, target)
        try:
            model, stats = await asyncio.wait_for(asyncio.shield(lookup), self.load_wait_s)
        except TimeoutError:
            handoff.abandon()
            failed_with(current, "ModelNotReadyException")
            await _refuse(send, 429, "ModelNotReadyException",
                          f"Model {target} is still loading; retry the request.")
            return
        except CacheError as exc:
            status = 500 if exc.code == "ModelError" else 400
            failed_with(current, exc.code, exc.message)
            await _refuse(send, status, exc.code, exc.message)
            return
        current.set_attribute(CACHE_ATTRIBUTE, _cache_outcome(stats))
        try:
            await self._predict(model, stats, body, headers, scope, receive, send)
        finally:
            self.cache.release(model)

    async def _predict(self, model: LoadedModel, stats: LoadStats, body: bytes,
                       headers: dict[bytes, bytes], scope: Scope, receive: Receive,
                       send: Send) -> None:
        loop = asyncio.get_running_loop()
        work = AbandonableWork(loop.time() + _timeout(headers), loop.time)
        watcher = asyncio.create_task(work.watch(receive))
        attributes = headers.get(_CUSTOM_ATTRIBUTES)
        args = (body, headers.get(b"content-type", b"").decode("latin-1"),
                headers.get(b"accept", b"").decode("latin-1"),
                attributes.decode("latin-1") if attributes is not None else None)
        traced = current_context()
        invoke = (partial(model.runtime.invoke, *args) if traced is None
                  else partial(_traced_invoke, traced, time.time_ns(), model.runtime, *args))
        try:
            result = await loop.run_in_executor(self.pool, work.run, invoke)
        except Abandoned as exc:
            log.warning("dropped a queued invocation: %s", exc)
            return
        except Exception as exc:
            await self._fail(send, exc, stats)
            return
        finally:
            watcher.cancel()
        out = [(b"content-type", result.content_type.encode("latin-1", "replace")),
               (STATS_HEADER.encode(), stats.header().encode())]
        if result.custom_attributes is not None:
            out.append((_CUSTOM_ATTRIBUTES, result.custom_attributes.encode("latin-1", "replace")))
        await _respond(send, 200, result.body, out)

    async def _fail(self, send: Send, exc: Exception, stats: LoadStats | None = None) -> None:
        status = getattr(exc, "status", 500)
        failed(get_current_span(), exc)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if status >= 500:
            log.error("invocation failed: %s", message, exc_info=exc.__cause__ or exc)
        extra = [] if stats is None else [(STATS_HEADER.encode(), stats.header().encode())]
        await _respond(send, status, message.encode("utf-8", "replace"),
                       [(b"content-type", b"text/plain; charset=utf-8"), *extra])



def _cache_outcome(stats: LoadStats) -> str:
    """hit: in memory already; disk: loaded from its unpacked archive; miss: downloaded."""
    if stats.hit:
        return "hit"
    return "miss" if stats.download_us else "disk"


class _Handoff:
    """One request's model lookup, which may outlive the request (ModelNotReadyException):
    then the model it loaded is released for the retry to find, whichever of the loading
    thread and the request gets there last."""

    def __init__(self, cache: ModelCache) -> None:
        self.cache = cache
        self.lock = threading.Lock()
        self.abandoned = False
        self.model: LoadedModel | None = None

    def acquire(self, target: str) -> tuple[LoadedModel, LoadStats]:
        model, stats = self.cache.acquire(target)
        with self.lock:
            if self.abandoned:
                self.cache.release(model)
            else:
                self.model = model
        return model, stats

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True
            model, self.model = self.model, None
        if model is not None:  # loaded just as the wait ended
            self.cache.release(model)


class _Named:
    """What serve() logs as the instance's runtime."""

    def __init__(self, name: str) -> None:
        self.name = name


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    await _respond(send, status, message.encode("utf-8", "replace"), [
        (b"content-type", b"text/plain; charset=utf-8"),
        (ERROR_HEADER.encode(), code.encode()),
    ])


def take_storage_options() -> dict[str, Any]:
    """The external store's options, removed from the environment before any model's code
    runs (as the instance token is): a model never sees the store's keys."""
    text = os.environ.pop(STORAGE_OPTIONS_ENV, "").strip()
    if not text:
        return {}
    options = json.loads(text)
    return options if isinstance(options, dict) else {}


def build_app(args: Any, token: str | None) -> MultiModelApp:
    """The instance's app for `instance.main`'s arguments; models load on first use."""
    from tideserve.serving.runtimes.loader import import_runtime, load_runtime

    env = dict(os.environ)
    options = take_storage_options()
    env.pop(STORAGE_OPTIONS_ENV, None)
    import_runtime(args.runtime, lean=False)  # once, before any model: loads only load
    budgets = budgets_from(env)

    def load(model_dir: Path) -> Any:
        return load_runtime(model_dir, args.runtime, env, args.trust_pickle, args.threads)

    cache = ModelCache(archive_fetcher(env, options), Path(args.model_dir).resolve(), budgets,
                       load, keep_loaded=env.get(CACHE_SETTING_ENV, "Enabled") != "Disabled")
    log.info("multi-model instance over %s: %d bytes of models in memory, %d on disk",
             env[URL_ENV], budgets.memory_bytes, budgets.disk_bytes)
    return MultiModelApp(cache, args.threads, int(args.max_payload_mb * 1024 * 1024),
                         int(args.max_async_payload_mb * 1024 * 1024), token)
