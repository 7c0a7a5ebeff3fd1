"""Choosing the AWS error code and HTTP status for a domain exception, per service.

The core raises the small tree in `tideserve.errors`; this module decides how each service
spells it (§1.10, §2.7, §7.1 of the spec). An exception whose `code` is set keeps that code
verbatim (its status then comes from the service model when the code is modeled there).

The per-class defaults are the `_BY_CLASS` table below: SageMaker reports not-found,
already-exists and in-progress conflicts as ValidationException and quotas as
ResourceLimitExceeded; Application Auto Scaling has ObjectNotFoundException,
ConcurrentUpdateException and LimitExceededException; CloudWatch uses its query-compatible shapes
(InvalidParameterValue, ResourceNotFound 404, ResourceConflict 409, LimitExceeded); Cost Explorer
ResourceNotFoundException and LimitExceededException; IAM and STS (Query only) the Query-era
codes: NoSuchEntity, ValidationError, InvalidAction, ServiceFailure. Throttling is
ThrottlingException (CloudWatch: Throttling), "nothing can serve now" is ServiceUnavailable 503,
an AuthError is 403 with its own code (CloudWatch's Query dialect: SignatureDoesNotMatch,
InvalidClientTokenId, MissingAuthenticationToken), anything unexpected 500 InternalFailure
(CloudWatch: InternalServiceError).

Shape-validation failures are ValidationException everywhere except CloudWatch, whose
query-compatible code is `ValidationError`, or `MissingParameter` for an absent required member.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tideserve import errors as domain
from tideserve.api.shapes import SerializationError, rpc_model
from tideserve.api.validation import ShapeValidationError


@dataclass(frozen=True)
class WireError:
    code: str  # `__type` for json/cbor: the error shape's name, or an unmodeled AWS code
    status: int
    message: str
    # CloudWatch only: the Query-era code, sent as `x-amzn-query-error: <code>;<Sender|Receiver>`
    # and as <Code> in Query XML. None for services that are not query-compatible.
    query_code: str | None = None

    @property
    def fault(self) -> str:
        return "Receiver" if self.status >= 500 else "Sender"


_BY_CLASS: dict[str, dict[type[domain.TideserveError], str]] = {
    "sagemaker": {
        domain.ValidationError: "ValidationException",
        domain.NotFoundError: "ValidationException",
        domain.AlreadyExistsError: "ValidationException",
        domain.ConflictError: "ValidationException",
        domain.LimitExceededError: "ResourceLimitExceeded",
    },
    "application-autoscaling": {
        domain.ValidationError: "ValidationException",
        domain.NotFoundError: "ObjectNotFoundException",
        domain.AlreadyExistsError: "ValidationException",
        domain.ConflictError: "ConcurrentUpdateException",
        domain.LimitExceededError: "LimitExceededException",
    },
    "monitoring": {
        domain.ValidationError: "InvalidParameterValueException",
        domain.NotFoundError: "ResourceNotFound",
        domain.AlreadyExistsError: "InvalidParameterValueException",
        domain.ConflictError: "ResourceConflict",
        domain.LimitExceededError: "LimitExceededFault",
        domain.ThrottledError: "Throttling",
    },
    "ce": {
        domain.ValidationError: "ValidationException",
        domain.NotFoundError: "ResourceNotFoundException",
        domain.AlreadyExistsError: "ValidationException",
        domain.ConflictError: "ValidationException",
        domain.LimitExceededError: "LimitExceededException",
    },
    # AWS Budgets: its own spellings; no ValidationException in its model (see below).
    "budgets": {
        domain.ValidationError: "InvalidParameterException",
        domain.NotFoundError: "NotFoundException",
        domain.AlreadyExistsError: "DuplicateRecordException",
        domain.ConflictError: "ResourceLockedException",
        domain.LimitExceededError: "CreationLimitExceededException",
    },
    "tideserve": {
        domain.ValidationError: "ValidationException",
        domain.NotFoundError: "ResourceNotFoundException",
    },
    "logs": {
        domain.ValidationError: "InvalidParameterException",
        domain.NotFoundError: "ResourceNotFoundException",
        domain.AlreadyExistsError: "ResourceAlreadyExistsException",
        domain.ConflictError: "OperationAbortedException",
        domain.LimitExceededError: "LimitExceededException",
    },
    # IAM and STS speak only Query: their codes are the Query-era ones (NoSuchEntity, ...).
    "iam": {
        domain.ValidationError: "ValidationError",
        domain.NotFoundError: "NoSuchEntityException",
        domain.AlreadyExistsError: "EntityAlreadyExistsException",
        domain.ConflictError: "ConcurrentModificationException",
        domain.LimitExceededError: "LimitExceededException",
    },
    "cloudtrail": {
        domain.ValidationError: "InvalidParameterException",
        domain.NotFoundError: "ResourceNotFoundException",
        domain.AlreadyExistsError: "InvalidParameterException",
        domain.ConflictError: "ConflictException",
        domain.LimitExceededError: "MaxConcurrentQueriesException",
    },
    # CloudFormation (Query only): nearly everything is ValidationError, even a missing stack.
    "cloudformation": {
        domain.ValidationError: "ValidationError",
        domain.NotFoundError: "ValidationError",
        domain.AlreadyExistsError: "AlreadyExistsException",
        domain.ConflictError: "InvalidChangeSetStatus",
        domain.LimitExceededError: "LimitExceededException",
    },
    "sts": {
        domain.ValidationError: "ValidationError",
        domain.NotFoundError: "ValidationError",
        domain.AlreadyExistsError: "ValidationError",
        domain.ConflictError: "ValidationError",
        domain.LimitExceededError: "ValidationError",
    },
}
# Services whose only protocol is Query: errors carry the model's error code (NoSuchEntity for
# the shape NoSuchEntityException), and a shape-validation failure is IAM's `ValidationError`.
_QUERY_ONLY = frozenset({"iam", "sts", "cloudformation"})
_COMMON = {
    domain.ThrottledError: "ThrottlingException",
    domain.UnavailableError: "ServiceUnavailable",
}
# Statuses of codes that no service model carries a status for.
_UNMODELED_STATUS = {
    "InternalFailure": 500,
    "InternalServiceException": 500,
    "InternalServiceError": 500,
    "ServiceUnavailable": 503,
    "AccessDeniedException": 403,
    "RequestEntityTooLarge": 413,
}
# Query-era spellings of unmodeled codes.
_QUERY_CODES = {"UnknownOperationException": "InvalidAction", "ThrottlingException": "Throttling"}
# CloudWatch's Query protocol names the SigV4 failures differently (§7.4 item 6).
_AUTH_QUERY_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
}


def wire_error(service: str, exc: BaseException) -> WireError:
    """How `service` (a SigV4 signing name) reports `exc`."""
    if isinstance(exc, domain.AuthError):
        code = exc.code or "MissingAuthenticationTokenException"
        return _finish(service, code, 403, exc.message, _AUTH_QUERY_CODES.get(code, code))
    if isinstance(exc, domain.AccessDeniedError):
        # IAM's refusal: AccessDeniedException (400) in json, AccessDenied in Query (403 there;
        # rpc.error_response sets it), the same sentence in both.
        return _finish(service, "AccessDeniedException", 403 if service in _QUERY_ONLY else 400,
                       exc.message, "AccessDenied")
    if isinstance(exc, ShapeValidationError):
        return _shape_validation(service, exc)
    if isinstance(exc, SerializationError) and service == "monitoring":
        # A value of the wrong type: the Query-era CloudWatch answer.
        return _modeled(service, "InvalidParameterValueException", exc.message)
    if isinstance(exc, domain.TideserveError):
        chosen = exc.code or _class_code(service, type(exc))
        if chosen is not None:
            return _modeled(service, chosen, exc.message)
    return _modeled(service, _internal(service), "An internal error occurred. Please retry.")


def _internal(service: str) -> str:
    if service == "iam":
        return "ServiceFailureException"
    return "InternalServiceFault" if service == "monitoring" else "InternalFailure"


def _class_code(service: str, cls: type[domain.TideserveError]) -> str | None:
    for klass in cls.__mro__:
        code = _BY_CLASS[service].get(klass) or _COMMON.get(klass)  # type: ignore[arg-type]
        if code:
            return code
    return None


# CloudTrail names its own exception for a constraint on these members (LookupEvents).
_CLOUDTRAIL_CONSTRAINTS = {
    "maxResults": "InvalidMaxResultsException",
    "lookupAttributes": "InvalidLookupAttributesException",
    "eventCategory": "InvalidEventCategoryException",
}


def _shape_validation(service: str, exc: ShapeValidationError) -> WireError:
    if service == "cloudtrail":
        member = exc.violations[0].path.split(".")[0] if exc.violations else ""
        if member in _CLOUDTRAIL_CONSTRAINTS:
            return _modeled(service, _CLOUDTRAIL_CONSTRAINTS[member], exc.message)
    if service in _QUERY_ONLY:
        return _modeled(service, "ValidationError", exc.message)
    if service in ("logs", "budgets"):  # both report constraint failures this way
        return _modeled(service, "InvalidParameterException", exc.message)
    if service != "monitoring":
        return _modeled(service, "ValidationException", exc.message)
    missing = next((v for v in exc.violations if v.missing_member), None)
    if missing is not None:
        message = f"The parameter {missing.missing_member} is required."
        return _modeled(service, "MissingRequiredParameterException", message)
    return _modeled(service, "ValidationException", exc.message)


def _modeled(service: str, code: str, message: str) -> WireError:
    unmodeled = (code, 0, _QUERY_CODES.get(code, code))
    shape_name, status, query_code = _error_table(service).get(code, unmodeled)
    if not status:
        status = _UNMODELED_STATUS.get(code, 400)
    return _finish(service, shape_name, status, message, query_code)


def _finish(service: str, code: str, status: int, message: str, query_code: str) -> WireError:
    if service in _QUERY_ONLY:
        return WireError(query_code, status, message, query_code)
    compatible = "awsQueryCompatible" in rpc_model(service).metadata
    return WireError(code, status, message, query_code if compatible else None)


@cache
def _error_table(service: str) -> dict[str, tuple[str, int, str]]:
    """Both the shape name and the query code of each modeled error -> (shape name, status,
    query code); status 0 where the model gives none."""
    table: dict[str, tuple[str, int, str]] = {}
    for shape in rpc_model(service).error_shapes:
        error = shape.metadata.get("error") or {}
        status = error.get("httpStatusCode") or _UNMODELED_STATUS.get(shape.name, 0)
        entry = (shape.name, status, shape.error_code or shape.name)
        table[shape.name] = entry
        table.setdefault(entry[2], entry)
    return table
