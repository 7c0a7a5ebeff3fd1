"""Error responses of the SageMaker Runtime data plane (rest-json, spec §3.1 / §7.2), used by the
router on the hot path, so each one is a couple of small allocations.

    ValidationError, NotFound, AlreadyExists, Conflict, LimitExceeded   400 ValidationError
    ModelInvocationError   424 ModelError {ErrorCode, OriginalStatusCode, OriginalMessage, ...}
    ThrottledError         400 ThrottlingException (code UNCONFIRMED for AWS; botocore retries it)
    UnavailableError       503 ServiceUnavailable
    AuthError              403 with its own code
    anything else          500 InternalFailure (logged with its traceback, never sent)

An exception whose `code` names a modeled runtime error (ModelNotReadyException 429,
InternalDependencyException 530, ...) is sent with that code and the model's status. botocore
reads the code from `x-amzn-ErrorType` (text after ':' ignored) and the members from the body.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid

from botocore.model import Shape
from starlette.responses import Response

from tideserve import errors as domain
from tideserve.api.shapes import service_model
from tideserve.api.validation import ShapeValidationError, Violation, scalar_constraints

log = logging.getLogger(__name__)

_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker.runtime/"
# The runtime model's error shapes and their statuses [botocore sagemaker-runtime 2017-05-13].
_MODELED_STATUS = {
    "ValidationError": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
    "InternalStreamFailure": 500,
    "ModelStreamError": 424,
    "ThrottlingException": 400,
}
_BY_CLASS: dict[type[domain.TideserveError], str] = {
    domain.ValidationError: "ValidationError",
    domain.NotFoundError: "ValidationError",
    domain.AlreadyExistsError: "ValidationError",
    domain.ConflictError: "ValidationError",
    domain.LimitExceededError: "ValidationError",
    domain.ThrottledError: "ThrottlingException",
    domain.UnavailableError: "ServiceUnavailable",
}


def runtime_error_response(exc: BaseException) -> Response:
    """`exc` as SageMaker Runtime reports it."""
    if isinstance(exc, domain.ModelInvocationError) and exc.code not in _MODELED_STATUS:
        return _model_error(exc)
    if isinstance(exc, domain.AuthError):
        return _error(exc.code or "MissingAuthenticationTokenException", 403, exc.message)
    if isinstance(exc, domain.AccessDeniedError):  # rest-json: 403 with x-amzn-ErrorType
        return _error("AccessDeniedException", 403, exc.message)
    if isinstance(exc, domain.TideserveError):
        code = exc.code or _class_code(type(exc))
        if code is not None:
            return _error(code, _MODELED_STATUS.get(code, 400), exc.message,
                          getattr(exc, "error_code", None))
    log.error("unexpected failure serving an invocation", exc_info=exc)
    return _error("InternalFailure", 500, "An internal error occurred. Please retry.")


def model_error_code(original_status: int) -> str:
    """ModelError's ErrorCode: who failed, by the container's own status (0: no answer)."""
    if 400 <= original_status < 500:
        return "CLIENT_ERROR_FROM_MODEL"
    return "SERVER_ERROR_FROM_MODEL"


def _class_code(cls: type[domain.TideserveError]) -> str | None:
    for klass in cls.__mro__:
        code = _BY_CLASS.get(klass)
        if code:
            return code
    return None


def _model_error(exc: domain.ModelInvocationError) -> Response:
    body: dict[str, object] = {
        "ErrorCode": exc.code or model_error_code(exc.original_status),
        "OriginalStatusCode": exc.original_status,
        "OriginalMessage": exc.original_message,
        "message": exc.message,
    }
    log_stream_arn = getattr(exc, "log_stream_arn", None)
    if log_stream_arn:
        body["LogStreamArn"] = log_stream_arn
    return _response("ModelError", 424, json.dumps(body).encode())


def _error(code: str, status: int, message: str, error_code: str | None = None) -> Response:
    """`error_code`: the body's ErrorCode member some errors carry beside the message
    (TARGET_MODEL_HEADER_NOT_SUPPORTED)."""
    body = {"message": message} if error_code is None else {
        "ErrorCode": error_code, "message": message}
    return _response(code, status, json.dumps(body).encode())


def _response(code: str, status: int, body: bytes) -> Response:
    headers = {"x-amzn-ErrorType": code + _TYPE_SUFFIX, "x-amzn-RequestId": str(uuid.uuid4())}
    return Response(body, status, headers, media_type="application/json")


def endpoint_name_in(path: str, prefix: str, suffix: str) -> str:
    """The EndpointName of a runtime path such as `/endpoints/<name>/invocations`, checked
    against the runtime model's constraint (pattern, at most 63 characters) so that a malformed
    name is the client's error in AWS's words rather than "not found"."""
    name = path[len(prefix) : len(path) - len(suffix)]
    if name in _VALID_NAMES:  # the hot path: a name seen before costs a set lookup
        return name
    failed = scalar_constraints(_endpoint_name_shape(), name)
    if failed:
        raise ShapeValidationError(
            [Violation("endpointName", f"'{name}'", "; ".join(failed))]
        )
    if len(_VALID_NAMES) >= 65536:  # names that pass, whether or not an endpoint has them
        _VALID_NAMES.clear()
    _VALID_NAMES.add(name)
    return name


_VALID_NAMES: set[str] = set()


@functools.cache
def _endpoint_name_shape() -> Shape:
    model = service_model("sagemaker-runtime").operation_model("InvokeEndpoint")
    return model.input_shape.members["EndpointName"]
