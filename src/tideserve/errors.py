"""The domain's exception tree. Adapters (the AWS wire protocols, the CLI) choose codes and
HTTP statuses from it; the core never names an HTTP status.

    TideserveError                 base; `message` is what the user reads
     ├── ValidationError           bad input: names the field, the value and what is allowed
     ├── NotFoundError             a named resource does not exist
     ├── AlreadyExistsError        a create named something that exists
     ├── ConflictError             the resource is busy (e.g. an endpoint that is Updating)
     ├── LimitExceededError        a quota or size limit
     ├── ThrottledError            too many requests right now (serverless MaxConcurrency)
     ├── AuthError                 SigV4: missing, unknown key, bad or expired signature
     ├── AccessDeniedError         authenticated, but no policy allows the call (IAM)
     ├── ModelInvocationError      the model container answered non-2xx, broke, or timed out
     └── UnavailableError          nothing can serve the request now (no instance in service)

`code`, when set, is the AWS error code an adapter should use verbatim; otherwise the adapter
maps the class to its service's code (SageMaker reports most not-found cases as
ValidationException, Application Auto Scaling as ObjectNotFoundException, and so on).
"""

from __future__ import annotations


class TideserveError(Exception):
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationError(TideserveError):
    pass


class NotFoundError(TideserveError):
    pass


class AlreadyExistsError(TideserveError):
    pass


class ConflictError(TideserveError):
    pass


class LimitExceededError(TideserveError):
    pass


class ThrottledError(TideserveError):
    pass


class AuthError(TideserveError):
    """`code` is one of MissingAuthenticationTokenException, UnrecognizedClientException,
    InvalidSignatureException, IncompleteSignatureException."""


class AccessDeniedError(TideserveError):
    """The message is IAM's sentence naming the caller, the action and the resource."""


class ModelInvocationError(TideserveError):
    """The container's own status (0 for a timeout or a broken connection) and body."""

    def __init__(
        self, message: str, *, original_status: int, original_message: str, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.original_status = original_status
        self.original_message = original_message


class UnavailableError(TideserveError):
    pass
