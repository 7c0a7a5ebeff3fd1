"""Sending one mini-batch to an instance: the request, its timeout and retries, and the model's
answer split back into records where filters or joins need them (pure apart from the call).

Retried (up to InvocationsMaxRetries): timeouts, connections that broke or were refused, and
5xx answers — failures another attempt may cure (AWS does not say which it retries). A 4xx is
the model refusing the input: final at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tideserve.errors import ModelInvocationError
from tideserve.serving.instance import INVOCATION_KIND_HEADER
from tideserve.serving.instance_client import InstanceClient, Undelivered, failure_message
from tideserve.serving.routes import Backend
from tideserve.transform.filters import FilterError


class BatchFailed(Exception):
    """The model did not transform the batch; `message` words it as SageMaker does."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # the container's answer; 0 when none came (timeout, broken)

    @property
    def client(self) -> bool:
        """A 4xx: the input's fault."""
        return 400 <= self.status < 500


@dataclass(frozen=True)
class Caller:
    client: InstanceClient
    content_type: str | None
    accept: str | None
    retries: int

    def headers(self) -> dict[str, str]:
        # Batch transform, like async inference, is an internal caller that sets its own body
        # limit (MaxPayloadInMB, up to 100 MB): the instance's async marker lifts its 6 MiB one.
        out = {INVOCATION_KIND_HEADER: "async"}
        if self.content_type:
            out["Content-Type"] = self.content_type
        if self.accept:
            out["Accept"] = self.accept
        return out

    async def send(self, backend: Backend, body: bytes) -> bytes:
        headers = self.headers()
        failure: BatchFailed | None = None
        for _ in range(self.retries + 1):
            try:
                reply = await self.client.invoke(backend, body, headers, track=False)
            except Undelivered as exc:
                failure = BatchFailed(failure_message(0, str(exc)))
                continue
            except ModelInvocationError as exc:
                failure = BatchFailed(exc.message)
                continue
            if 200 <= reply.status < 300:
                return reply.body
            text = reply.body.decode("utf-8", "replace")[:512]
            failure = BatchFailed(failure_message(reply.status, text), status=reply.status)
            if failure.client:
                break
        assert failure is not None
        raise failure


def split_outputs(body: bytes, count: int, accept: str | None) -> list[bytes]:
    """One output per record of the batch: a JSON array's elements, else its lines."""
    if count == 1:
        return [body.rstrip(b"\r\n")]
    if (accept or "").startswith("application/json"):
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and len(value) == count:
            return [json.dumps(v, separators=(",", ":")).encode() for v in value]
    lines = [line for line in body.rstrip(b"\r\n").split(b"\n")]
    if len(lines) != count:
        raise FilterError(f"the model answered {len(lines)} lines for {count} records, so its "
                          "output cannot be joined or filtered record by record")
    return [line.rstrip(b"\r") for line in lines]
