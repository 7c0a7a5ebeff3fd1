"""One entry point for every RPC-style AWS call: detect the protocol, decode, validate against
the botocore shape, call the registered handler, encode the result or the error.

    awsJson 1.0/1.1   X-Amz-Target: <Prefix>.<Op>                     (all four services)
    RPC v2 CBOR       POST /service/<ServiceId>/operation/<Op>,
                      smithy-protocol: rpc-v2-cbor                     (CloudWatch)
    Query             form body Action=<Op>&Version=...                (CloudWatch)

A protocol the service's model does not declare is answered as an unknown operation. Handlers
receive the decoded, validated input as plain Python and return the output the same way; they
raise `tideserve.errors` exceptions and never see HTTP. Authentication happens before this
(the caller verifies SigV4 over the bytes as received, compressed or not); authorisation
(a CallGuard's AccessPort) after validation and before the handler, and the audit record
(its AuditPort) after the handler and before the response leaves.
"""

from __future__ import annotations

import inspect
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from botocore.model import OperationModel, ServiceModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tideserve import errors as domain
from tideserve.api import validation, wire_cbor, wire_json, wire_query
from tideserve.api.errors import WireError, wire_error
from tideserve.api.ports import AccessPort, ApiCall, AuditPort
from tideserve.api.shapes import RPC_MODELS, SerializationError, find_operation, rpc_model
from tideserve.api.sigv4 import Identity, scope_service

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], "dict[str, Any] | None | Awaitable[dict[str, Any] | None]"]
# A handler whose answer depends on who signed (STS GetCallerIdentity): (input, signer) -> output.
CallerHandler = Callable[[dict[str, Any], Identity], "dict[str, Any] | None"]
# Gzip bodies are inflated to at most this: CloudWatch's own request limit is 1 MB and
# SageMaker's 6 MiB, so anything near it is a decompression bomb, not a metric batch.
MAX_INFLATED_BYTES = 16 * 1024 * 1024


class Protocol(StrEnum):
    JSON = "json"
    CBOR = "smithy-rpc-v2-cbor"
    QUERY = "query"


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    is_async: bool
    with_caller: bool = False


@dataclass(frozen=True)
class CallGuard:
    """The layers around every RPC call: who may make it, and the record that it was made."""

    access: AccessPort | None = None
    audit: AuditPort | None = None


_UNGUARDED = CallGuard()

# Who the RPC call being served acts for, with the gate that judged it. Work that a handler
# starts (a stack's resource calls, in tasks that inherit this context) is judged for the same
# caller, as CloudFormation acts with its caller's credentials; unset, it is the server's own.
_ACTING: ContextVar[tuple[str, AccessPort, str] | None] = ContextVar("acting", default=None)


def authorize_as_caller(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Raise AccessDeniedError unless the caller of the RPC call that started this work may
    call `operation` of `service` with `params` (nothing to check for the server's own work)."""
    acting = _ACTING.get()
    if acting is not None:
        key_id, access, source_ip = acting
        access.authorize(key_id, service, operation, params, source_ip)


class OperationRegistry:
    """Which handler serves each (SigV4 signing name, AWS operation name)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], _Registration] = {}

    def register(self, service: str, operation: str, handler: Handler) -> None:
        if service not in RPC_MODELS:
            raise ValueError(f"unknown service {service!r}; expected one of {sorted(RPC_MODELS)}")
        if find_operation(rpc_model(service), operation) is None:
            raise ValueError(f"{service} has no operation named {operation!r}")
        self._handlers[(service, operation)] = _Registration(
            handler, inspect.iscoroutinefunction(handler)
        )

    def register_all(self, service: str, operations: Mapping[str, Handler]) -> None:
        """Every (name, handler) of one component's `operations()`."""
        for operation, handler in operations.items():
            self.register(service, operation, handler)

    def register_with_caller(self, service: str, operation: str, handler: CallerHandler) -> None:
        """A (synchronous) handler that is also given the verified signer's Identity."""
        self.register(service, operation, lambda params: None)
        self._handlers[(service, operation)] = _Registration(
            cast(Handler, handler), is_async=False, with_caller=True
        )

    def lookup(self, service: str, operation: str) -> _Registration | None:
        return self._handlers.get((service, operation))

    def operations(self, service: str) -> list[str]:
        return sorted(op for svc, op in self._handlers if svc == service)


async def handle_rpc(
    request: Request, body: bytes, service: str, registry: OperationRegistry,
    caller: Identity | None = None, guard: CallGuard = _UNGUARDED,
) -> Response:
    """Serve one authenticated RPC request for `service` (a SigV4 signing name), signed by
    `caller`."""
    request_id = str(uuid.uuid4())
    protocol = detect_protocol(request.headers, request.url.path)
    if service not in RPC_MODELS:
        unknown = _unknown_operation(f"tideserve serves no RPC API signed as '{service}'")
        return error_response(protocol, "sagemaker", unknown, request_id)
    operation: OperationModel | None = None
    params: dict[str, Any] = {}
    who: dict[str, Any] | None = None
    try:
        model = rpc_model(service)
        body = inflate(request.headers, body)
        operation, params = _decode_request(request, body, protocol, model)
        registration = registry.lookup(service, operation.name)
        if registration is None:
            raise _unknown_operation(f"{operation.name} is not implemented by tideserve")
        if guard.access is not None and caller is not None:
            # Before the handler: a DeleteAccessKey of the signing key must still name its user.
            who = await run_in_threadpool(guard.access.identify, caller.access_key_id)
        validation.check(operation.input_shape, params)
        if guard.access is not None and caller is not None:
            await run_in_threadpool(guard.access.authorize, caller.access_key_id, service,
                                    operation.name, params, _client_ip(request))
        acting = _ACTING.set(None if guard.access is None or caller is None
                             else (caller.access_key_id, guard.access, _client_ip(request)))
        try:
            result = await _call(registration, params, caller)
        finally:
            _ACTING.reset(acting)  # tasks the handler started keep their copy
        response = _success(protocol, operation, result, request_id)
        await _audit(guard, request, service, operation.name, caller, who, params, result,
                     None, request_id)
        return response
    except Exception as exc:  # every failure becomes an AWS-shaped error response
        if not isinstance(exc, domain.TideserveError):
            op_name = operation.name if operation else "?"
            log.exception("unexpected failure in %s.%s (request %s)", service, op_name, request_id)
        response = error_response(protocol, service, exc, request_id)
        if operation is not None and guard.audit is not None:
            try:
                await _audit(guard, request, service, operation.name, caller, who, params,
                             None, (protocol, wire_error(service, exc)), request_id)
            except Exception:
                log.exception("audit record of a failed %s.%s not stored", service,
                              operation.name)
        return response


def _client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


async def _audit(
    guard: CallGuard, request: Request, service: str, operation: str,
    caller: Identity | None, who: dict[str, Any] | None, params: dict[str, Any],
    result: dict[str, Any] | None, failed: tuple[Protocol, WireError] | None, request_id: str,
) -> None:
    if guard.audit is None or caller is None or not guard.audit.records(service, operation):
        return
    code = message = None
    if failed is not None:
        protocol, error = failed
        code = (error.query_code or error.code) if protocol is Protocol.QUERY else error.code
        message = error.message
    call = ApiCall(service, operation, who, params, result, code, message, request_id,
                   _client_ip(request), request.headers.get("user-agent", ""), caller.region)
    await run_in_threadpool(guard.audit.record, call)


def detect_protocol(headers: Mapping[str, str], path: str) -> Protocol:
    """Which wire protocol the request speaks, from its headers and path alone."""
    if "x-amz-target" in headers:
        return Protocol.JSON
    if headers.get("smithy-protocol") == "rpc-v2-cbor" or path.startswith("/service/"):
        return Protocol.CBOR
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return Protocol.QUERY
    return Protocol.JSON


def rpc_error_response(request: Request, service: str, exc: BaseException) -> Response:
    """An AWS error for a request that failed before handle_rpc (e.g. SigV4), in the
    request's own protocol."""
    protocol = detect_protocol(request.headers, request.url.path)
    dialect = service if service in RPC_MODELS else "sagemaker"
    return error_response(protocol, dialect, exc, str(uuid.uuid4()))


def auth_error_response(request: Request, exc: BaseException) -> Response:
    """rpc_error_response in the dialect of the service the request claims to be signed for
    (unverified: it only chooses how the failure is worded)."""
    return rpc_error_response(request, scope_service(request.headers) or "sagemaker", exc)


def inflate(headers: Mapping[str, str], body: bytes) -> bytes:
    """Undo `Content-Encoding: gzip` (CloudWatch PutMetricData over 10 KB), bounded."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise SerializationError(f"Unsupported Content-Encoding: {encoding}")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise SerializationError(f"The gzip request body is corrupt: {exc}") from exc
    if inflater.unconsumed_tail:
        raise domain.LimitExceededError(
            f"The request body inflates to more than {MAX_INFLATED_BYTES} bytes.",
            code="RequestEntityTooLarge",
        )
    return data


def _decode_request(
    request: Request, body: bytes, protocol: Protocol, model: ServiceModel
) -> tuple[OperationModel, dict[str, Any]]:
    if protocol.value not in _protocols_of(model):
        raise _unknown_operation(f"{model.service_name} does not speak the {protocol} protocol")
    if protocol is Protocol.QUERY:
        form = wire_query.parse_form(body)
        form.update(request.query_params)
        operation = _operation(model, form.get("Action", ""))
        return operation, wire_query.parse_input(form, operation.input_shape)
    if protocol is Protocol.CBOR:
        operation = _operation(model, _cbor_operation_name(request.url.path, model))
        return operation, wire_cbor.parse_input(body, operation.input_shape)
    prefix, _, name = request.headers["x-amz-target"].rpartition(".")
    if prefix != model.metadata.get("targetPrefix"):
        raise _unknown_operation(f"Unknown target prefix {prefix!r}")
    operation = _operation(model, name)
    return operation, wire_json.parse_input(body, operation.input_shape)


def _protocols_of(model: ServiceModel) -> list[str]:
    declared = model.metadata.get("protocols")
    return list(declared) if declared else [model.metadata["protocol"]]


def _cbor_operation_name(path: str, model: ServiceModel) -> str:
    parts = path.split("/")  # ['', 'service', <ServiceId>, 'operation', <Op>]
    if len(parts) != 5 or parts[1] != "service" or parts[3] != "operation":
        raise _unknown_operation(f"Not an RPC v2 operation path: {path}")
    if parts[2] != model.metadata.get("targetPrefix"):
        raise _unknown_operation(f"Unknown service id {parts[2]!r}")
    return parts[4]


def _operation(model: ServiceModel, name: str) -> OperationModel:
    operation = find_operation(model, name)
    if operation is None:
        raise _unknown_operation(f"Unknown operation {name!r}")
    return operation


def _unknown_operation(message: str) -> domain.ValidationError:
    return domain.ValidationError(message, code="UnknownOperationException")


async def _call(
    registration: _Registration, params: dict[str, Any], caller: Identity | None
) -> dict[str, Any] | None:
    if registration.with_caller:
        if caller is None:
            raise domain.AuthError("This operation needs a signed request.",
                                   code="MissingAuthenticationTokenException")
        return cast("dict[str, Any] | None",
                    await run_in_threadpool(registration.handler, params, caller))  # type: ignore[call-arg]
    if registration.is_async:
        result = await registration.handler(params)  # type: ignore[misc]
    else:
        result = await run_in_threadpool(registration.handler, params)
    if inspect.isawaitable(result):
        result = await result
    return cast("dict[str, Any] | None", result)


def _success(
    protocol: Protocol, operation: OperationModel, result: dict[str, Any] | None, request_id: str
) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    shape = operation.output_shape
    if protocol is Protocol.QUERY:
        body = wire_query.render_output(operation, result, request_id)
        return Response(body, 200, headers, media_type=wire_query.CONTENT_TYPE)
    if protocol is Protocol.CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        body = wire_cbor.render_output(shape, result)
        return Response(body, 200, headers, media_type=wire_cbor.CONTENT_TYPE)
    body = wire_json.render_output(shape, result)
    return Response(body, 200, headers, media_type=_json_type(operation.service_model))


def error_response(
    protocol: Protocol, service: str, exc: BaseException, request_id: str
) -> Response:
    """`exc` as `service` reports it, in `protocol`'s error format."""
    error = wire_error(service, exc)
    headers = {"x-amzn-RequestId": request_id}
    if protocol is Protocol.QUERY:
        namespace = rpc_model(service).metadata.get("xmlNamespace", "")
        code = error.query_code or error.code
        body = wire_query.error_body(code, error.message, error.fault, request_id, namespace)
        # Query services answer AccessDenied with 403, json ones AccessDeniedException with 400.
        status = 403 if isinstance(exc, domain.AccessDeniedError) else error.status
        return Response(body, status, headers, media_type=wire_query.CONTENT_TYPE)
    if error.query_code is not None:
        headers["x-amzn-query-error"] = f"{error.query_code};{error.fault}"
    if protocol is Protocol.CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
        body = wire_cbor.error_body(error.code, error.message)
        return Response(body, error.status, headers, media_type=wire_cbor.CONTENT_TYPE)
    body = wire_json.error_body(error.code, error.message)
    return Response(body, error.status, headers, media_type=_json_type(rpc_model(service)))


def _json_type(model: ServiceModel) -> str:
    return f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"
