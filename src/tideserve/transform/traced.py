"""A transform job's traces: each input object is a trace (`TransformJob object`: the job,
the object's URI and size), and each mini-batch request it sends is a span of it
(`TransformJob mini-batch`: its records' range, its bytes), with the instance's hop and the
instance's own spans below as for any request. Retries of one mini-batch are hops under the
same span; the halving that finds a failed record (runner._locate) sends requests of its own,
untraced.

No client is waiting on a job, so the server's sampler decides per object, as it does per
request (`--trace-sample-ratio`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from tideserve.serving.routes import Backend
from tideserve.tracing import CLIENT, span, span_under
from tideserve.transform.batch import Caller
from tideserve.transform.jobs import ObjectRow
from tideserve.transform.records import Batch

T = TypeVar("T")
OBJECT_SPAN = "TransformJob object"
REQUEST_SPAN = "TransformJob mini-batch"
JOB_ATTRIBUTE = "tideserve.transform_job"


async def traced_object(job: str, row: ObjectRow, work: Awaitable[T]) -> T:
    """`work` (transforming the object) as its own trace; its requests nest in it."""
    with span_under(None, OBJECT_SPAN, {JOB_ATTRIBUTE: job, "objectstore.uri": row.uri,
                                        "tideserve.bytes": row.size}):
        return await work


async def traced_request(caller: Caller, backend: Backend, uri: str, batch: Batch,
                         body: bytes) -> bytes:
    """caller.send(backend, body) as a span of the object's trace."""
    with span(REQUEST_SPAN, {"objectstore.uri": uri, "tideserve.batch": batch.seq,
                             "tideserve.first_record": batch.first,
                             "tideserve.last_record": batch.first + batch.count - 1,
                             "tideserve.records": batch.count,
                             "tideserve.bytes": len(body)}, CLIENT):
        return await caller.send(backend, body)
