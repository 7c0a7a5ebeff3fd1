"""Adaptive batching at the instance: concurrent requests joined into one predict call.

Opt-in per model, by its container Environment:

    TIDESERVE_MAX_BATCH_SIZE       requests joined into one predict at most (>= 1; unset or 1:
                                   no batching, the default)
    TIDESERVE_MAX_BATCH_DELAY_MS   how long a request may wait for others, in milliseconds
                                   (>= 0; default 2)

Named after the quantities they bound, as TorchServe's `batch_size`/`max_batch_delay` and
Triton's `max_queue_delay_microseconds` are; the size counts requests, not rows, because a
request is the unit a client waits on.

Adaptive: a request that finds the instance idle (no predict running) is dispatched at once,
alone, so a client at concurrency 1 waits for nothing. While predicts run, requests queue; a
batch leaves when a prediction thread is free and either the queue holds the maximum size or
its oldest request has waited the delay; with one thread that is simply "when the running
predict ends", so a batch is whatever arrived meanwhile.

A batch runs in one prediction thread (`run_batch`): each request is decoded on its own
(its content type, its input_fn), requests whose rows have the same width and kind of values
are joined (numpy.concatenate) and predicted at once, and the prediction is split back by row
count and encoded for each request (its Accept, its output_fn). So a request that does not
decode fails alone, with the error it would get unbatched. If a joined predict raises, or
its answer does not have one row per input row, each request in that group is run alone, so
only the request at fault fails (a row of the wrong width in a CSV, say). Requests that carry
custom attributes (which can choose the predict method), and requests whose runtime cannot
read them as rows, always run alone.

Traced requests keep their own trees: each its `queue`, `decode` and `encode` spans, and the
joined predict as a `batch predict` span in each (one holds the predict and links to the
others; they link back to it), with the batch's size as an attribute.

Which runtimes batch: scikit-learn, XGBoost, ONNX and PyTorch models, whose predict takes
rows; a model with its own predict_fn, or a plain-Python model, when its inference.py sets
`batchable = True` (handler.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.trace import Link, get_current_span

from tideserve.errors import ValidationError
from tideserve.serving.abandonable import AbandonableWork
from tideserve.serving.codecs import InvokeError
from tideserve.serving.handler import Context, InvokeResult, Runtime
from tideserve.tracing import interval, run_in, span

log = logging.getLogger("tideserve.instance")

MAX_BATCH_SIZE_ENV = "TIDESERVE_MAX_BATCH_SIZE"
MAX_BATCH_DELAY_ENV = "TIDESERVE_MAX_BATCH_DELAY_MS"
DEFAULT_DELAY_MS = 2.0


@dataclass(frozen=True)
class BatchSettings:
    max_size: int  # requests per predict; 1: no batching
    max_delay_s: float  # seconds a queued request waits for others

    @property
    def enabled(self) -> bool:
        return self.max_size > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchSettings:
        size = _number(env, MAX_BATCH_SIZE_ENV, "1", int, "a whole number of requests >= 1")
        delay = _number(env, MAX_BATCH_DELAY_ENV, str(DEFAULT_DELAY_MS), float,
                        "milliseconds >= 0")
        if size < 1:
            raise ValidationError(f"{MAX_BATCH_SIZE_ENV}={size} must be at least 1.")
        if not math.isfinite(delay) or delay < 0:
            raise ValidationError(f"{MAX_BATCH_DELAY_ENV}={delay} must be 0 or more.")
        return cls(size, delay / 1000)


def _number(env: Mapping[str, str], name: str, default: str, kind: Callable[[str], Any],
            allowed: str) -> Any:
    text = env.get(name, "").strip() or default
    try:
        return kind(text)
    except ValueError:
        raise ValidationError(f"{name}={text!r} is not {allowed}.") from None


@dataclass
class Request:
    body: bytes
    content_type: str
    accept: str
    custom_attributes: str | None
    work: AbandonableWork
    future: asyncio.Future[InvokeResult] = field(repr=False)
    queued_at: float = 0.0
    trace: Any = None  # the request's trace context (an OpenTelemetry Context); None: untraced
    queued_ns: int = 0  # time.time_ns() when it arrived, for its `queue` span


class Batcher:
    """Queues requests on the event loop and hands batches to the prediction pool."""

    def __init__(self, runtime: Runtime, pool: Executor, threads: int,
                 settings: BatchSettings) -> None:
        self.runtime = runtime
        self.pool = pool
        self.threads = threads
        self.settings = settings
        self.queue: list[Request] = []
        self.running = 0  # batches in the pool
        self._timer: asyncio.TimerHandle | None = None

    async def invoke(self, body: bytes, content_type: str, accept: str,
                     custom_attributes: str | None, work: AbandonableWork,
                     trace: Any = None) -> InvokeResult:
        loop = asyncio.get_running_loop()
        request = Request(body, content_type, accept, custom_attributes, work,
                          loop.create_future(), loop.time(), trace, time.time_ns())
        self.queue.append(request)
        self._dispatch_ready(loop)
        return await request.future

    def _dispatch_ready(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.queue and self.running < self.threads:
            full = len(self.queue) >= self.settings.max_size
            due = self.queue[0].queued_at + self.settings.max_delay_s
            if self.running and not full and loop.time() < due:
                if self._timer is None:
                    self._timer = loop.call_at(due, self._on_timer, loop)
                return
            batch, self.queue = (self.queue[: self.settings.max_size],
                                 self.queue[self.settings.max_size:])
            self._start(loop, batch)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._dispatch_ready(loop)

    def _start(self, loop: asyncio.AbstractEventLoop, batch: list[Request]) -> None:
        self.running += 1
        done = loop.run_in_executor(self.pool, run_batch, self.runtime, batch)
        done.add_done_callback(lambda f: self._finish(loop, batch, f))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[Request],
                done: asyncio.Future[list[InvokeResult | BaseException]]) -> None:
        self.running -= 1
        try:
            outcomes: Sequence[InvokeResult | BaseException] = done.result()
        except BaseException as exc:  # run_batch answers per request; this is a bug
            outcomes = [exc] * len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.future.done():  # the handler was cancelled meanwhile
                continue
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)
        self._dispatch_ready(loop)


def run_batch(runtime: Runtime, batch: Sequence[Request]) -> list[InvokeResult | BaseException]:
    """In a prediction thread: each request's answer or the exception it fails with."""
    outcomes: list[InvokeResult | BaseException | None] = [None] * len(batch)
    groups: dict[tuple[Any, ...], list[tuple[int, Any]]] = {}
    for i, request in enumerate(batch):
        if request.trace is not None:
            run_in(request.trace, interval, "queue", request.queued_ns, None,
                   {"tideserve.batch_size": len(batch)})
        try:
            request.work.run(lambda: None)  # raises Abandoned when nobody waits any more
            rows = None if len(batch) == 1 else run_in(request.trace, _rows, runtime, request)
        except Exception as exc:
            outcomes[i] = exc
            continue
        if rows is None:
            outcomes[i] = run_in(request.trace, _alone, runtime, request)
        else:
            groups.setdefault((rows.shape[1:], rows.dtype.kind), []).append((i, rows))
    for members in groups.values():
        for i, outcome in _joined(runtime, batch, members):
            outcomes[i] = outcome
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _rows(runtime: Runtime, request: Request) -> np.ndarray | None:
    """The request decoded as rows to join, or None when it must run alone. Raises the
    request's own decoding error."""
    if runtime.batch_rows is None or request.custom_attributes is not None:
        return None
    decoded = runtime.decode(request.body, request.content_type, _context(runtime))
    return runtime.batch_rows(decoded)  # type: ignore[no-any-return]


def _alone(runtime: Runtime, request: Request) -> InvokeResult | BaseException:
    try:
        return runtime.invoke(request.body, request.content_type, request.accept,
                              request.custom_attributes)
    except Exception as exc:
        return exc


def _joined(runtime: Runtime, batch: Sequence[Request], members: list[tuple[int, Any]]
            ) -> list[tuple[int, InvokeResult | BaseException]]:
    """One predict over the members' joined rows, split back; each member alone if it fails."""
    try:
        prediction = _traced_predict(runtime, [batch[i] for i, _ in members],
                                     np.concatenate([rows for _, rows in members]))
    except InvokeError as exc:
        if len(members) == 1:
            return [(members[0][0], exc)]
        log.info("a batch of %d requests failed (%s); running each alone", len(members),
                 exc.message)
        return [(i, run_in(batch[i].trace, _alone, runtime, batch[i])) for i, _ in members]
    parts = [prediction] if len(members) == 1 else _split(prediction, [len(r) for _, r in members])
    if parts is None:
        return [(i, run_in(batch[i].trace, _alone, runtime, batch[i])) for i, _ in members]
    return [(i, run_in(batch[i].trace, _encoded, runtime, batch[i], part))
            for (i, _), part in zip(members, parts, strict=True)]


def _traced_predict(runtime: Runtime, requests: list[Request], rows: Any) -> Any:
    """runtime.predict over a batch's rows. Traced: one `batch predict` span (the predict in
    it) in the trace of the first traced request, linked to the others; each other traced
    request gets a `batch predict` span over the same interval that links back to it, so
    every request's tree shows the predict it waited for."""
    traced = [r for r in requests if r.trace is not None]
    if not traced:
        return runtime.predict(rows, _context(runtime))
    leader, followers = traced[0], traced[1:]
    links = [Link(get_current_span(r.trace).get_span_context()) for r in followers]
    size = {"tideserve.batch_size": len(requests)}
    started = time.time_ns()

    def predict() -> Any:
        with span("batch predict", size, links=links) as joined:
            try:
                return runtime.predict(rows, _context(runtime))
            finally:
                shared = [Link(joined.get_span_context())]
                for r in followers:
                    run_in(r.trace, interval, "batch predict", started, None, size, shared)

    return run_in(leader.trace, predict)


def _split(prediction: Any, counts: list[int]) -> list[Any] | None:
    """The prediction cut into each request's rows, or None when it has not one row per input
    row (a model answering one value for the whole batch cannot be split)."""
    if not isinstance(prediction, np.ndarray) or prediction.ndim == 0:
        return None
    if prediction.shape[0] != sum(counts):
        return None
    return np.split(prediction, np.cumsum(counts)[:-1])


def _encoded(runtime: Runtime, request: Request, prediction: Any) -> InvokeResult | BaseException:
    try:
        accept = runtime.accept_for(request.accept)
        return runtime.encode(prediction, accept, _context(runtime))
    except Exception as exc:
        return exc


def _context(runtime: Runtime) -> Context:
    # Only requests without custom attributes are joined, so every stage sees none.
    return Context(runtime.model_dir, None)
