"""The instance process: one model behind the SageMaker container contract.

    python -m tideserve.serving.instance --model-dir DIR --runtime NAME --port P
        [--host 127.0.0.1] [--threads N] [--trust-pickle] [--max-payload-mb 6]
        [--max-async-payload-mb 1024]

The process environment carries the model's Environment (SAGEMAKER_PROGRAM, ...). With
TIDESERVE_MULTI_MODEL_URL set it serves many models instead (serving/multi_model.py). The model is
loaded before the socket opens, so a 200 from `GET /ping` means ready. `POST /invocations`
runs the runtime in a thread pool of `--threads` workers, so /ping answers while predictions
run; numeric libraries are limited to the same number of threads. Statuses: 413 for a body
over the limit, 400/415 for a body or type the runtime refuses, 500 when the model raises
(the first line of the error in the body, the traceback in this process's log). SIGTERM stops
accepting, finishes in-flight requests and exits 0.

With `TIDESERVE_MAX_BATCH_SIZE` in the model's Environment, concurrent invocations are
joined into one predict (serving/batching.py); a malformed batching setting fails the start.

Body limits: `--max-payload-mb` (6 MiB, InvokeEndpoint's) for every request, except those the
async dispatcher marks with `X-Tideserve-Invocation: async`, which may be up to
`--max-async-payload-mb` (1 GiB, InvokeEndpointAsync's). A real-time client cannot claim the
larger limit: the front refuses its body past 6 MiB and the router forwards only the
SageMaker headers it names, never this one. The body is held whole (a model parses the whole
payload): reading it peaks at twice its size (the chunks, then the joined bytes), so an
instance needs about 2x its largest input plus what its model makes of it.

The ASGI app is written against the raw protocol: the whole data path is a header scan, a
body read and one executor hop, well under a millisecond.

Top-level imports are standard library only: thread limits must be in the environment before
numpy is first imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opentelemetry.trace import get_current_span

from tideserve.serving.abandonable import AbandonableWork, Abandoned
from tideserve.serving.instance_token import TOKEN_HEADER_RAW, presented_matches, take_token
from tideserve.tracing import SERVER, current_context, failed, interval, run_in, span, span_under
from tideserve.tracing.instance import setup_instance_tracing
from tideserve.tracing.propagation import extract_raw

log = logging.getLogger("tideserve.instance")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
# Set by the async dispatcher on the router->instance hop only (see the module docstring).
INVOCATION_KIND_HEADER = "X-Tideserve-Invocation"
_INVOCATION_KIND = INVOCATION_KIND_HEADER.lower().encode()
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
# The router's trace context (tracing/propagation.py); absent: the request is not traced.
_TRACEPARENT, _XRAY = b"traceparent", b"x-amzn-trace-id"
INSTANCE_SPAN = "instance /invocations"


def load_runtime(
    model_dir: Path,
    runtime: str,
    env: Mapping[str, str],
    trust_pickle: bool = False,
    threads: int | None = None,
) -> Any:
    """Load a model in this process, as an instance does (see runtimes.loader)."""
    from tideserve.serving.runtimes.loader import load_runtime as load

    return load(model_dir, runtime, env, trust_pickle, threads)


class InstanceApp:
    """ASGI app for /ping, /invocations and /execution-parameters over one runtime."""

    def __init__(self, runtime: Any, threads: int, max_payload_bytes: int,
                 max_async_payload_bytes: int | None = None, token: str | None = None,
                 batching: Any = None) -> None:
        self.runtime = runtime
        # Every request but /ping must carry it (serving/instance_token.py); None: open.
        self.token = token.encode() if token else None
        self.threads = threads
        self.max_payload_bytes = max_payload_bytes
        self.max_async_payload_bytes = max(max_payload_bytes,
                                           max_async_payload_bytes or max_payload_bytes)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="predict")
        # A batching.Batcher when the model batches (batching.BatchSettings); None: each
        # request is its own predict.
        self.batcher: Any = None
        if batching is not None and batching.enabled:
            from tideserve.serving.batching import Batcher

            self.batcher = Batcher(runtime, self.pool, threads, batching)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/ping" and method in ("GET", "HEAD"):
            await _respond(send, 200, b"", [])
        elif self.token is not None and not _carries(scope, self.token):
            await _respond(send, 403, _NOT_FROM_ROUTER, _TEXT)
        elif path == "/invocations":
            if method == "POST":
                await self.invocations(scope, receive, send)
            else:
                await _respond(send, 405, b"Use POST /invocations.", _TEXT)
        elif path == "/execution-parameters" and method == "GET":
            await _respond(send, 200, self._execution_parameters(), _JSON)
        else:
            await _respond(
                send, 404, b"Not found: the instance serves /ping and /invocations.", _TEXT
            )

    async def invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        if _TRACEPARENT not in headers and _XRAY not in headers:
            await self._invocations(scope, receive, send, headers)
            return
        parent = extract_raw(headers.get(_TRACEPARENT), headers.get(_XRAY))
        with span_under(parent, INSTANCE_SPAN, {"tideserve.runtime": self.runtime.name}, SERVER):
            await self._invocations(scope, receive, send, headers)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send,
                           headers: dict[bytes, bytes]) -> None:
        limit = self.body_limit(headers)
        if int(headers.get(b"content-length", 0) or 0) > limit:
            await _respond(send, 413, self._too_large(limit), _TEXT)
            return
        with span("receive body") as receiving:
            body = await _read_body(receive, limit)
            receiving.set_attribute("tideserve.bytes", len(body or b""))
        if body is None:
            await _respond(send, 413, self._too_large(limit), _TEXT)
            return
        attributes = headers.get(_CUSTOM_ATTRIBUTES)
        loop = asyncio.get_running_loop()
        work = AbandonableWork(loop.time() + _timeout(headers), loop.time)
        watcher = asyncio.create_task(work.watch(receive))
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1")
        custom = attributes.decode("latin-1") if attributes is not None else None
        traced = current_context()  # None: not traced
        try:
            if self.batcher is not None:
                result = await self.batcher.invoke(body, content_type, accept, custom, work,
                                                   traced)
            elif traced is None:
                result = await loop.run_in_executor(
                    self.pool, work.run, self.runtime.invoke, body, content_type, accept, custom
                )
            else:
                result = await loop.run_in_executor(
                    self.pool, work.run, _traced_invoke, traced, time.time_ns(), self.runtime,
                    body, content_type, accept, custom)
        except Abandoned as exc:
            log.warning("dropped a queued invocation: %s", exc)
            return  # nobody is waiting for an answer
        except Exception as exc:
            await self._fail(send, exc)
            return
        finally:
            watcher.cancel()
        out = [(b"content-type", result.content_type.encode("latin-1", "replace"))]
        if result.custom_attributes is not None:
            out.append((_CUSTOM_ATTRIBUTES, result.custom_attributes.encode("latin-1", "replace")))
        await _respond(send, 200, result.body, out)

    async def _fail(self, send: Send, exc: Exception) -> None:
        status = getattr(exc, "status", 500)
        failed(get_current_span(), exc)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if status >= 500:
            cause = exc.__cause__ or exc
            log.error("invocation failed: %s", message, exc_info=cause)
        await _respond(send, status, message.encode("utf-8", "replace"), _TEXT)

    def body_limit(self, headers: dict[bytes, bytes]) -> int:
        if headers.get(_INVOCATION_KIND) == b"async":
            return self.max_async_payload_bytes
        return self.max_payload_bytes

    @staticmethod
    def _too_large(limit: int) -> bytes:
        return f"Request body is larger than the {limit} bytes this instance accepts.".encode()

    def _execution_parameters(self) -> bytes:
        # Batch transform asks this to size its requests (spec 3.6).
        return json.dumps(
            {
                "MaxConcurrentTransforms": self.threads,
                "BatchStrategy": "MULTI_RECORD",
                # 0 would mean "no limit" to batch transform, so never report less than 1.
                "MaxPayloadInMB": max(1, self.max_payload_bytes // (1024 * 1024)),
            }
        ).encode()


_JSON = [(b"content-type", b"application/json")]
_NOT_FROM_ROUTER = (
    b"Forbidden: this instance answers only tideserve's router (the request lacks the "
    b"instance's X-Tideserve-Instance-Token). Invoke the endpoint through the server: "
    b"POST /endpoints/<name>/invocations, signed with SigV4."
)


def _carries(scope: Scope, token: bytes) -> bool:
    presented = next((v for k, v in scope["headers"] if k == TOKEN_HEADER_RAW), None)
    return presented_matches(token, presented)


def _traced_invoke(traced: Any, queued_ns: int, runtime: Any, *args: Any) -> Any:
    """runtime.invoke in a prediction thread, in the request's trace: first the time it
    waited for the thread (`queue`), then decode, predict and encode (handler.py)."""

    def invoke() -> Any:
        interval("queue", queued_ns)
        return runtime.invoke(*args)

    return run_in(traced, invoke)


# The router says how long it waits for this answer (serving/router.py); past that, work still
# queued for a prediction thread is dropped rather than run for nobody.
TIMEOUT_HEADER = b"x-tideserve-model-timeout"


def _timeout(headers: dict[bytes, bytes]) -> float:
    try:
        return float(headers.get(TIMEOUT_HEADER, b"inf"))
    except ValueError:
        return float("inf")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tideserve.serving.instance", description=__doc__)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1, help="prediction threads (>= 1)")
    parser.add_argument("--trust-pickle", action="store_true")
    parser.add_argument("--max-payload-mb", type=float, default=6.0)
    parser.add_argument("--max-async-payload-mb", type=float, default=1024.0)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools; must run before numpy is imported to reach every library."""
    for name in _THREAD_VARS:
        os.environ[name] = str(threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    limit_threads(args.threads)
    token = take_token()  # before the model loads: its code and children never see it
    # Before the model's code too: the exporter's token leaves the environment, and a user's
    # inference.py finds OpenTelemetry's global provider set (tracing/instance.py).
    setup_instance_tracing(os.environ)
    if token is None:
        log.warning("no %s in the environment: any local user can invoke this instance",
                    "TIDESERVE_INSTANCE_TOKEN")
    if os.environ.get("TIDESERVE_MULTI_MODEL_URL"):  # many models, loaded on first use
        from tideserve.serving.multi_model import build_app

        return serve(build_app(args, token), args.host, args.port)
    try:
        runtime = load_runtime(
            args.model_dir, args.runtime, dict(os.environ), args.trust_pickle, args.threads
        )
        batching = batch_settings(runtime, os.environ)
    except Exception as exc:  # the instance never becomes ready; say why and exit 1
        message = getattr(exc, "message", None)
        log.error("cannot load the model: %s", message or exc, exc_info=message is None)
        return 1
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
    except ImportError:
        pass
    app = InstanceApp(runtime, args.threads, int(args.max_payload_mb * 1024 * 1024),
                      int(args.max_async_payload_mb * 1024 * 1024), token, batching)
    return serve(app, args.host, args.port)


def batch_settings(runtime: Any, env: Mapping[str, str]) -> Any:
    """The model's batching settings (serving/batching.py); None when it does not batch.
    Raises ValidationError for a malformed setting, so the instance fails to start."""
    from tideserve.serving.batching import BatchSettings

    settings = BatchSettings.from_env(env)
    if not settings.enabled:
        return None
    if runtime.batch_rows is None:
        log.warning("TIDESERVE_MAX_BATCH_SIZE is set but this model's predict is not known to "
                    "take a batch (a transform_fn, or a predict_fn without `batchable = True` "
                    "in its module): serving each request on its own")
        return None
    log.info("batching up to %d requests, waiting at most %.1f ms", settings.max_size,
             settings.max_delay_s * 1000)
    return settings


def serve(app: InstanceApp, host: str, port: int) -> int:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal to the handler
    # that was installed before it ran; a no-op one here turns that into a clean exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_available("uvloop", "asyncio"),
        http=_available("httptools", "h11"),
        lifespan="off",
        access_log=False,
        log_level="warning",
        # Longer than the router's idle keep-alive, so the instance never closes a pooled
        # connection the router is about to reuse.
        timeout_keep_alive=75,
        server_header=False,
        date_header=False,
    )
    log.info("serving %s on http://%s:%d", app.runtime.name, host, port)
    uvicorn.Server(config).run()
    app.pool.shutdown(wait=True)
    return 0


def _available(module: str, fallback: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return module


if __name__ == "__main__":
    sys.exit(main())
