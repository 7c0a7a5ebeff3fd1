"""One transform job, start to end: list its inputs (once: the listing is stored), deal them
over its instances (sorted keys, round-robin: deterministic, AWS leaves the rule open), and on
each instance transform its objects one after another with up to MaxConcurrentTransforms
mini-batches in flight, answers kept in input order.

An object's life (its row in transform_objects): pending -> staged (the output is complete
and durable in the temp area) -> done (published), or failed. A restarted server resumes an
InProgress job: staged outputs are published as they are, pending objects start over (their
partial outputs were never published), done ones are left alone — so no output is written
twice and none is half-written.

A failed object does not stop the others (AWS: outputs of successful objects remain); the job
ends Failed with the first failure's reason, which names the object and the record. Stopping
lets the requests in flight end, publishes nothing more, and ends the job Stopped.

Instances come and go under a job. One worker per instance slot takes its own objects in
order and, once it has none left, the last object of the longest other queue, so objects move
to whichever instance is free. An instance that is lost mid-object -- a spot instance reclaimed
at the end of its two-minute notice (tideserve's spot transform, spec.py), or a process that
exited (a crash) -- gives its object back: the partial output is discarded, the object is
pending again at the front of the queue, and the worker starts a replacement (on spot, once
capacity allows). An output is published only from a whole, uninterrupted pass over its
object, so none is written twice. A spot instance that has been noticed starts no new object.
A model that crashes its instance more than MAX_CRASH_REPLACEMENTS times fails its objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from tideserve.clock import Clock
from tideserve.serving.instance_client import InstanceClient
from tideserve.transform.batch import BatchFailed, Caller, split_outputs
from tideserve.transform.datalog import DataLog, object_name
from tideserve.transform.filters import FilterError, apply_filter, join
from tideserve.transform.inputs import InputMissing, list_inputs
from tideserve.transform.instances import (
    EXITED,
    NOTICED,
    RECLAIMED,
    InstanceFailed,
    JobFleet,
    JobInstance,
)
from tideserve.transform.jobs import JobRow, JobStore, ObjectRow
from tideserve.transform.objects import JobObjects, output_uri
from tideserve.transform.output import Assembler
from tideserve.transform.progress import Progress
from tideserve.transform.records import Batch, RecordTooLarge, batches, open_input
from tideserve.transform.spec import TransformJobSpec, effective_parameters
from tideserve.transform.traced import traced_object, traced_request

log = logging.getLogger("tideserve.transform")

TAKE_BATCHES = 256  # mini-batches read per hop to the reader thread
TAKE_BYTES = 4 << 20  # ... or this many bytes of them
INTERNAL = "InternalServerError: We encountered an internal error.  Please try again."
WATCH_SECONDS = 0.1  # how often a working instance's spot notice and process are looked at
EXIT_WAIT_SECONDS = 2.0  # after a broken connection: how long to wait to see the process exit
MAX_CRASH_REPLACEMENTS = 3  # per job: a model that crashes every instance fails its objects
RECLAIM_GRACE_SECONDS = 1.0  # a reclaimed instance's SIGTERM -> SIGKILL


class ObjectFailed(Exception):
    pass


class Stopped(Exception):
    pass


class InstanceLost(Exception):
    """The object's instance went away under it (reclaimed, or its process exited)."""


@dataclass
class Resolved:
    multi: bool
    max_payload_mb: int
    concurrent: int


class JobRun:
    def __init__(self, row: JobRow, spec: TransformJobSpec, store: JobStore,
                 objects: JobObjects, fleet: JobFleet, clock: Clock,
                 data_log: DataLog | None = None) -> None:
        self.row = row
        self.spec = spec
        self.store = store
        self.objects = objects
        self.fleet = fleet
        self.clock = clock
        self.progress = Progress()
        self.stopping = False
        self.started = clock.now()
        self.caller = Caller(InstanceClient(spec.invocation_timeout), spec.content_type,
                             spec.accept, spec.invocation_retries)
        self.base = spec.input_uri
        self.data_log = data_log or DataLog(None)
        self.start_failure: str | None = None  # an instance that could not start fails the job
        self.resolved: Resolved | None = None  # from the first instance's execution-parameters
        self.crashes = 0  # instances replaced after their process exited mid-object

    def stop(self) -> None:
        self.stopping = True

    async def run(self) -> None:
        name = self.spec.name
        try:
            status, reason = await self._run()
        except Exception:
            log.exception("transform job %s failed", name)
            status, reason = "Failed", INTERNAL
        finally:
            await self.caller.client.close()
        if self.stopping:
            status, reason = "Stopped", None
        self.store.finish(name, status, reason, self.clock.now())
        log.info("transform job %s: %s %s", name, status, reason or "")

    async def _run(self) -> tuple[str, str | None]:
        if self.row.start_time is None:
            self.store.update(self.spec.name, self.clock.now(), start_time=self.clock.now())
        rows = self.store.objects(self.spec.name)
        stored = self.store.get(self.spec.name)
        if rows and stored is not None and stored.input_base:
            self.base = stored.input_base  # resumed: the stored listing stands
        else:
            try:
                inputs = await asyncio.to_thread(list_inputs, self.objects, self.spec)
            except InputMissing as exc:
                return "Failed", str(exc)
            self.base = inputs.base
            count = self.spec.instance_count
            self.store.add_objects(self.spec.name, inputs.base, [
                (uri, size, i % count) for i, (uri, size) in enumerate(inputs.objects)])
            rows = self.store.objects(self.spec.name)
        rows = await self._publish_staged(rows)
        self._count(rows)
        pending = [r for r in rows if r.state == "pending"]
        if pending and not self.stopping:
            failure = await self._on_instances(pending)
            if failure is not None:
                return "Failed", failure
        return _outcome(self.store.objects(self.spec.name))

    def _count(self, rows: list[ObjectRow]) -> None:
        p = self.progress
        p.objects_total, p.bytes_total = len(rows), sum(r.size for r in rows)
        finished = [r for r in rows if r.state in ("done", "failed")]
        p.objects_done = sum(1 for r in finished if r.state == "done")
        p.objects_failed = len(finished) - p.objects_done
        p.bytes_done = sum(r.size for r in finished)
        p.records_done = sum(r.records for r in finished)

    async def _publish_staged(self, rows: list[ObjectRow]) -> list[ObjectRow]:
        """Publish outputs a stopped server had completed; drop the partial ones it left."""
        for r in rows:
            if r.state == "pending" and r.staged_path:
                Path(r.staged_path).unlink(missing_ok=True)  # begun, never complete
                self.store.mark(self.spec.name, r.seq, "pending", staged_path=None)
            if r.state != "staged":
                continue
            staged = Path(r.staged_path or "")
            if staged.is_file():
                await asyncio.to_thread(self.objects.republish, staged,
                                        output_uri(self.spec.output_path, self.base, r.uri))
            self.store.mark(self.spec.name, r.seq, "done", staged_path=None)
        return self.store.objects(self.spec.name)

    # -- instances ----------------------------------------------------------------------------

    async def _on_instances(self, pending: list[ObjectRow]) -> str | None:
        """Transform the pending objects with one worker per instance slot; returns a
        FailureReason if an instance could not start."""
        queues = [deque(r for r in pending if r.instance == i)
                  for i in range(self.spec.instance_count)]
        async with asyncio.TaskGroup() as workers:  # one raising cancels the others
            for i in range(self.spec.instance_count):
                workers.create_task(self._worker(i, queues))
        return self.start_failure

    def _halted(self) -> bool:
        return self.stopping or self.start_failure is not None

    async def _worker(self, index: int, queues: list[deque[ObjectRow]]) -> None:
        inst: JobInstance | None = None
        try:
            while not self._halted():
                if inst is not None and self.fleet.condition(inst) is not None:
                    await self.fleet.stop(inst)  # noticed, or gone: no new object on it
                    inst = None
                if inst is None:
                    inst = await self._start(index, queues)
                    if inst is None:
                        return
                row = _next_object(queues, index)
                if row is None:
                    return
                if not await self._watched(inst, row):
                    continue
                queues[index].appendleft(row)  # lost: first in line for the next instance
                await self.fleet.stop(inst, grace=RECLAIM_GRACE_SECONDS)
                inst = None
        finally:
            if inst is not None:
                await self.fleet.stop(inst)

    async def _start(self, index: int, queues: list[deque[ObjectRow]]) -> JobInstance | None:
        """The slot's next instance (on spot: once capacity of the type is to be had, while
        objects are left: the other instances may take them all meanwhile); None if there is
        nothing left to do, the job is stopping, or an instance could not start."""
        while not self.fleet.spot_available(self.spec):
            if self._halted() or not any(queues):
                return None
            await asyncio.sleep(WATCH_SECONDS)
        if self._halted() or not any(queues):
            return None
        try:
            inst = await self.fleet.start(self.spec, self.row.arn, index)
        except InstanceFailed as exc:
            self.start_failure = self.start_failure or str(exc)
            return None
        if self.resolved is None:
            strategy, payload, concurrent = effective_parameters(
                self.spec, inst.execution_parameters)
            self.resolved = Resolved(strategy == "MultiRecord", payload, concurrent)
            self.data_log.line(
                f"MaxConcurrentTransforms={concurrent}, MaxPayloadInMB={payload}, "
                f"BatchStrategy={'MULTI_RECORD' if self.resolved.multi else 'SINGLE_RECORD'}",
                self.clock.now())
        if inst.spot:
            self.data_log.line(f"{inst.instance_id}: a spot instance", self.clock.now())
        return inst

    async def _watched(self, inst: JobInstance, r: ObjectRow) -> bool:
        """Transform one object while watching its instance; True if the instance was lost
        under it (the object is pending again)."""
        watch = asyncio.create_task(self._watch(inst))
        try:
            assert self.resolved is not None
            return await self._object(inst, r, self.resolved)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def _watch(self, inst: JobInstance) -> None:
        """Log a spot notice; at the reclaim, take the instance away (its requests in flight
        break, and the object sees it lost)."""
        noticed = False
        while True:
            condition = self.fleet.condition(inst)
            if condition in (NOTICED, RECLAIMED) and not noticed:
                noticed = True
                at = self.fleet.reclaim_at(inst) or self.clock.now()
                self.data_log.line(f"{inst.instance_id}: spot interruption notice, reclaimed "
                                   f"at {_iso(at)}", self.clock.now())
            if condition == RECLAIMED:
                inst.lost = True
                self.data_log.line(f"{inst.instance_id}: reclaimed; its unfinished object "
                                   "goes back to the queue", self.clock.now())
                await self.fleet.halt(inst, RECLAIM_GRACE_SECONDS)
                return
            await asyncio.sleep(WATCH_SECONDS)

    async def _crashed(self, inst: JobInstance) -> bool:
        """After a mini-batch got no answer: is the instance lost (reclaimed, or its process
        exited within EXIT_WAIT_SECONDS), and may its object go to a replacement?"""
        deadline = self.clock.now() + EXIT_WAIT_SECONDS
        while not inst.lost and self.fleet.condition(inst) != EXITED:
            if self.clock.now() >= deadline:
                return False
            await asyncio.sleep(0.05)
        if inst.lost:
            return True
        if self.crashes >= MAX_CRASH_REPLACEMENTS:
            return False
        self.crashes += 1
        inst.lost = True
        self.data_log.line(f"{inst.instance_id}: the instance's process exited; its "
                           "unfinished object goes to a replacement", self.clock.now())
        return True

    # -- one object ---------------------------------------------------------------------------

    async def _object(self, inst: JobInstance, r: ObjectRow, resolved: Resolved) -> bool:
        """Transform, stage and publish one object; True if its instance was lost under it."""
        target = output_uri(self.spec.output_path, self.base, r.uri)
        out = Assembler(self.objects.new_output(), self.spec.assemble_line)
        # Recorded so that a server killed meanwhile removes the partial file when it resumes.
        self.store.mark(self.spec.name, r.seq, "pending", staged_path=str(out.temp.path))
        counted = _Counting(self.progress)
        try:
            await traced_object(self.spec.name, r,  # the object's trace (traced.py)
                                self._transform(inst, r, resolved, out, counted))
            etag = await asyncio.to_thread(out.finish)
            self.store.mark(self.spec.name, r.seq, "staged", staged_path=str(out.temp.path),
                            records=out.records)
            ctype = self.spec.accept or "application/octet-stream"
            await asyncio.to_thread(self.objects.publish, out.temp, target, etag, ctype)
            self.store.mark(self.spec.name, r.seq, "done", staged_path=None)
            self.progress.objects_done += 1
        except Stopped:
            out.discard()
            self.store.mark(self.spec.name, r.seq, "pending", staged_path=None)
            return False
        except InstanceLost:
            out.discard()
            self.store.mark(self.spec.name, r.seq, "pending", staged_path=None)
            self.progress.bytes_done -= counted.count  # it is read again from the start
            self.progress.records_done -= out.records
            return True
        except ObjectFailed as exc:
            out.discard()
            self.store.mark(self.spec.name, r.seq, "failed", reason=str(exc),
                            records=out.records, staged_path=None)
            self.progress.objects_failed += 1
            self.data_log.line(f"{object_name(r.uri)}: {exc}", self.clock.now())
        self.progress.bytes_done += r.size - counted.count  # the whole object, read or not
        return False

    async def _transform(self, inst: JobInstance, r: ObjectRow, resolved: Resolved,
                         out: Assembler, counted: _Counting) -> None:
        try:
            raw = await asyncio.to_thread(self.objects.open, r.uri)
        except Exception as exc:  # noqa: BLE001 - any store error fails the object
            raise ObjectFailed(f"ClientError: {r.uri}: the object could not be read: {exc}"
                               ) from None
        counted.raw = raw
        reader = batches(open_input(cast(BinaryIO, counted), self.spec.gzip),
                         split_line=self.spec.split_line, multi=resolved.multi,
                         max_payload_mb=resolved.max_payload_mb)
        window: deque[tuple[Batch, list[bytes] | None, asyncio.Task[bytes]]] = deque()
        try:
            while True:
                group = await asyncio.to_thread(self._take, reader, r.uri)
                if not group:
                    break
                for batch, originals, body in group:
                    if self.stopping:
                        raise Stopped
                    if inst.lost:
                        raise InstanceLost
                    while len(window) >= resolved.concurrent:
                        await self._settle(inst, r, window.popleft(), out)
                    task = asyncio.create_task(
                        traced_request(self.caller, inst.backend, r.uri, batch, body))
                    window.append((batch, originals, task))
            while window:
                await self._settle(inst, r, window.popleft(), out)
        finally:
            for _, _, task in window:
                task.cancel()
            await asyncio.gather(*(t for _, _, t in window), return_exceptions=True)
            await asyncio.to_thread(raw.close)

    def _take(self, reader: Iterator[Batch], uri: str
              ) -> list[tuple[Batch, list[bytes] | None, bytes]]:
        """The next mini-batches (in the reader thread), each with its records as read and the
        body to send (InputFilter applied) when records are handled one by one."""
        group: list[tuple[Batch, list[bytes] | None, bytes]] = []
        size = 0
        try:
            for batch in reader:
                if self.spec.per_record:
                    originals = batch.records()
                    body = self._filtered(originals, batch, uri)
                    group.append((batch, originals, body))
                else:
                    group.append((batch, None, batch.body))
                size += len(batch.body)
                if len(group) >= TAKE_BATCHES or size >= TAKE_BYTES:
                    break
        except RecordTooLarge as exc:
            raise ObjectFailed(f"ClientError: {uri}: {exc}") from None
        except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile is an OSError
            raise ObjectFailed(f"ClientError: {uri}: the object could not be read "
                               f"({'gzip' if self.spec.gzip else 'data'}): {exc}") from None
        return group

    def _filtered(self, records: list[bytes], batch: Batch, uri: str) -> bytes:
        path = self.spec.input_filter
        if path is None:
            return batch.body
        out = []
        for i, record in enumerate(records):
            try:
                out.append(apply_filter(path, record, self.spec.content_type))
            except (FilterError, UnicodeDecodeError) as exc:
                raise ObjectFailed(f"ClientError: {uri}: record {batch.first + i}: the "
                                   f"InputFilter {path.text} failed: {exc}") from None
        return b"\n".join(out)

    async def _settle(self, inst: JobInstance, r: ObjectRow,
                      entry: tuple[Batch, list[bytes] | None, asyncio.Task[bytes]],
                      out: Assembler) -> None:
        batch, originals, task = entry
        try:
            answer = await task
        except BatchFailed as exc:
            if exc.status == 0 and await self._crashed(inst):
                raise InstanceLost from None
            where = await self._locate(inst, batch, originals, exc)
            kind = "ClientError" if exc.client else "AlgorithmError"
            raise ObjectFailed(f"{kind}: {r.uri}: {where}: {exc.message}") from None
        if originals is None:
            await asyncio.to_thread(out.response, answer, batch.count)
        else:
            outputs = await asyncio.to_thread(self._joined, originals, answer, batch, r.uri)
            await asyncio.to_thread(out.record_outputs, outputs)
        self.progress.records_done += batch.count

    def _joined(self, originals: list[bytes], answer: bytes, batch: Batch,
                uri: str) -> list[bytes]:
        accept = self.spec.accept or self.spec.content_type
        try:
            outputs = split_outputs(answer, len(originals), accept)
        except FilterError as exc:
            raise ObjectFailed(f"ClientError: {uri}: records {batch.first}-"
                               f"{batch.first + batch.count - 1}: {exc}") from None
        result = []
        for i, (record, output) in enumerate(zip(originals, outputs, strict=True)):
            try:
                value = join(record, output, self.spec.content_type) if self.spec.join_input \
                    else output
                if self.spec.output_filter is not None:
                    value = apply_filter(self.spec.output_filter, value, accept)
            except (FilterError, UnicodeDecodeError) as exc:
                raise ObjectFailed(f"ClientError: {uri}: record {batch.first + i}: {exc}"
                                   ) from None
            result.append(value)
        return result

    async def _locate(self, inst: JobInstance, batch: Batch, originals: list[bytes] | None,
                      failure: BatchFailed) -> str:
        """Which record the model failed on: a mini-batch of many records is halved until one
        record fails alone (log2(n) more requests, only on the failure path). A mini-batch that
        got no answer at all (timeout, instance gone) is named by its range of records."""
        if batch.count == 1:
            return f"record {batch.first}"
        if failure.status == 0:
            return f"records {batch.first}-{batch.first + batch.count - 1}"
        records = originals if originals is not None and self.spec.input_filter is None \
            else batch.records()
        lo, hi = 0, len(records)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                await self.caller.send(inst.backend, b"\n".join(records[lo:mid]))
                lo = mid  # the first half is fine: the failure is in the second
            except BatchFailed:
                hi = mid
        return f"record {batch.first + lo}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _next_object(queues: list[deque[ObjectRow]], index: int) -> ObjectRow | None:
    """The slot's own next object, else the last of the longest other queue (taken from its
    end, so the owner keeps going in order); None when every queue is empty."""
    if queues[index]:
        return queues[index].popleft()
    longest = max(queues, key=len)
    return longest.pop() if longest else None


class _Counting:
    """A file object that adds the bytes read to the job's progress (and its own count)."""

    def __init__(self, progress: Progress) -> None:
        self.raw: Any = None
        self.progress = progress
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.raw.read(n)
        self.progress.bytes_done += len(data)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def _outcome(rows: list[ObjectRow]) -> tuple[str, str | None]:
    failed = [r for r in rows if r.state == "failed"]
    if not failed:
        return "Completed", None
    reason = failed[0].reason or INTERNAL
    if len(failed) > 1:
        reason += f" ({len(failed) - 1} more input objects failed.)"
    return "Failed", reason[:1024]
