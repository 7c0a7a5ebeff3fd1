"""InvokeEndpointAsync's request side (spec §3.3): headers in, a committed queue row out.

The 202 is sent only after `accept` returns, and `accept` returns only after the row is
committed: an accepted request survives a crash from that moment on. The input object must
exist when the request is accepted (as AWS checks at dispatch; an early answer is kinder).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tideserve.api.shapes import service_model
from tideserve.api.validation import check
from tideserve.asyncinf.config import AsyncConfig
from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.asyncinf.invoke import MAX_INPUT_BYTES, too_large_reason
from tideserve.asyncinf.objects import Objects, join
from tideserve.asyncinf.queue import AsyncQueue, QueuedRequest
from tideserve.clock import Clock
from tideserve.errors import ValidationError
from tideserve.tracing import PARKED, span

MAX_INLINE_BYTES = 128_000
DEFAULT_TTL_SECONDS = 21_600  # 6 h
DEFAULT_TIMEOUT_SECONDS = 900  # 15 min
ACCEPTING = ("InService", "Updating", "SystemUpdating", "RollingBack")

# boto3 parameter -> request header (botocore's sagemaker-runtime model).
_HEADERS = {
    "ContentType": "x-amzn-sagemaker-content-type",
    "Accept": "x-amzn-sagemaker-accept",
    "CustomAttributes": "x-amzn-sagemaker-custom-attributes",
    "InferenceId": "x-amzn-sagemaker-inference-id",
    "InputLocation": "x-amzn-sagemaker-inputlocation",
    "S3OutputPathExtension": "x-amzn-sagemaker-s3outputpathextension",
    "Filename": "x-amzn-sagemaker-filename",
    "RequestTTLSeconds": "x-amzn-sagemaker-requestttlseconds",
    "InvocationTimeoutSeconds": "x-amzn-sagemaker-invocationtimeoutseconds",
}
_INTEGERS = ("RequestTTLSeconds", "InvocationTimeoutSeconds")


@dataclass(frozen=True)
class Accepted:
    inference_id: str
    output_location: str
    failure_location: str

    def body(self) -> bytes:
        return json.dumps({"InferenceId": self.inference_id}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"x-amzn-sagemaker-outputlocation", self.output_location.encode("latin-1")),
            (b"x-amzn-sagemaker-failurelocation", self.failure_location.encode("latin-1")),
        ]


@dataclass(frozen=True)
class Locations:
    output: str
    failure: str


def locations(config: AsyncConfig, request_id: str, extension: str | None,
              filename: str | None) -> Locations:
    """`<S3OutputPath>[/<extension>]/<Filename or <id>.out>`, and the failure object
    `<S3FailurePath>[/<extension>]/<id>-error.out` (S3OutputPath without a failure path).
    The id is ours and unique, so two requests never share an object."""
    ext = extension or ""
    return Locations(
        output=join(config.output_path, ext, filename or f"{request_id}.out"),
        failure=join(config.failure_path, ext, f"{request_id}-error.out"),
    )


def parse_params(name: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The InvokeEndpointAsync input as boto3 names it, checked against botocore's shape."""
    params: dict[str, Any] = {"EndpointName": name}
    for member, header in _HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        if member in _INTEGERS:
            try:
                params[member] = int(value)
            except ValueError:
                raise ValidationError(
                    f"Value '{value}' at '{member[0].lower() + member[1:]}' failed to satisfy "
                    "constraint: Member must be an integer"
                ) from None
        else:
            params[member] = value
    if body:
        params["Body"] = body
    shape = service_model("sagemaker-runtime").operation_model("InvokeEndpointAsync").input_shape
    check(shape, params)
    if ("Body" in params) == ("InputLocation" in params):
        raise ValidationError(
            "Provide exactly one of InputLocation or Body (an inline payload of up to "
            f"{MAX_INLINE_BYTES} bytes)."
        )
    return params


class AsyncFront:
    max_inline_bytes = MAX_INLINE_BYTES

    def __init__(
        self,
        endpoints: AsyncEndpoints,
        queue: AsyncQueue,
        objects: Objects,
        endpoint_status: Callable[[str], str | None],
        clock: Clock,
        account: str,
        on_accepted: Callable[[str], None] = lambda name: None,
    ) -> None:
        self.endpoints = endpoints
        self.queue = queue
        self.objects = objects
        self.endpoint_status = endpoint_status  # name -> EndpointStatus, None if unknown
        self.clock = clock
        self.account = account
        self.on_accepted = on_accepted  # wakes the dispatcher; must be thread-safe

    def accept(self, name: str, headers: dict[str, str], body: bytes) -> Accepted:
        """Validate, enqueue durably, and say where the result will appear. Blocking (one
        database commit): the app runs it in a thread."""
        params = parse_params(name, headers, body)
        config = self._config(name)
        if "InputLocation" in params:
            self._check_input(params["InputLocation"])
        request_id = str(uuid.uuid4())
        where = locations(config, request_id, params.get("S3OutputPathExtension"),
                          params.get("Filename"))
        inference_id = params.get("InferenceId") or request_id
        # The dispatch continues this request's trace (dispatcher.py), from memory.
        PARKED.park(request_id)
        with span("async.enqueue", {"tideserve.inference_id": inference_id}):
            self._enqueue(name, request_id, inference_id, params, where)
        self.on_accepted(name.lower())
        return Accepted(inference_id, where.output, where.failure)

    def _enqueue(self, name: str, request_id: str, inference_id: str, params: dict[str, Any],
                 where: Locations) -> None:
        self.queue.enqueue(QueuedRequest(
            id=request_id, endpoint_lower=name.lower(), inference_id=inference_id,
            input_location=params.get("InputLocation"), body=params.get("Body"),
            content_type=params.get("ContentType"), accept=params.get("Accept"),
            custom_attributes=params.get("CustomAttributes"),
            output_location=where.output, failure_location=where.failure,
            enqueued_at=self.clock.now(),
            ttl_seconds=params.get("RequestTTLSeconds", DEFAULT_TTL_SECONDS),
            timeout_seconds=params.get("InvocationTimeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
        ))

    def _config(self, name: str) -> AsyncConfig:
        status = self.endpoint_status(name)
        if status is None:
            raise ValidationError(f"Endpoint {name} of account {self.account} not found.")
        config = self.endpoints.get(name)
        if config is None:
            raise ValidationError(
                f"Endpoint {name} is not an asynchronous endpoint: its endpoint configuration "
                "has no AsyncInferenceConfig. Use InvokeEndpoint."
            )
        if status not in ACCEPTING:
            raise ValidationError(
                f"Endpoint {name} of account {self.account} is not in service (status "
                f"{status})."
            )
        return config

    def _check_input(self, uri: str) -> None:
        with span("objectstore.head", {"objectstore.uri": uri}) as head:
            if not self.objects.exists(uri):
                raise ValidationError(
                    f"Could not access the InputLocation {uri}: the object does not exist."
                )
            size = self.objects.size(uri)
            head.set_attribute("tideserve.bytes", size)
        if size > MAX_INPUT_BYTES:
            raise ValidationError(too_large_reason(uri, size))

    def is_async(self, name: str) -> bool:
        return self.endpoints.is_async(name)

    def refuse_sync(self, name: str) -> None:
        """InvokeEndpoint on an async endpoint: AWS accepts only InvokeEndpointAsync there."""
        if self.endpoints.is_async(name):
            raise ValidationError(
                f"Endpoint {name} is an asynchronous endpoint (it has an AsyncInferenceConfig): "
                "invoke it with InvokeEndpointAsync."
            )
