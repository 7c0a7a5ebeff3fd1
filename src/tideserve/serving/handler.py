"""The SageMaker inference toolkit's handler convention, composed over a framework runtime.

A model directory may carry `code/inference.py` (or the module `SAGEMAKER_PROGRAM` names)
defining any of `model_fn(model_dir)`, `input_fn(input_data, content_type)`,
`predict_fn(data, model)`, `output_fn(prediction, accept)`, or instead of the last three a
single `transform_fn(model, input_data, content_type, accept)`; each may take a trailing
`context` argument. Optional `pre_model_fn(model_dir)` runs before model_fn and
`model_warmup_fn(model_dir, model)` after it. A module-level `batchable = True` says its
predict_fn (or its model's predict) takes the rows of several requests at once and returns one
output row per input row, so the instance may batch requests (serving/batching.py);
`batchable = False` opts a framework model out. What the module leaves out comes from the
framework (model_fn, predict_fn) and from `codecs` (input_fn, output_fn).

As in the toolkit: JSON and CSV bodies reach a user's input_fn/transform_fn as `str`, other
types as `bytes`; an absent or `*/*` Accept becomes `SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`
(default application/json); output_fn/transform_fn may return a body or `(body, content_type)`,
and without a content type the response carries the Accept value. An exception with an integer
`status_code` (the toolkit's GenericInferenceToolkitError) answers with that status; any other
exception answers 500 with its first line, the traceback kept as the InvokeError's __cause__.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tideserve.errors import ValidationError
from tideserve.serving import codecs
from tideserve.serving.codecs import InvokeError
from tideserve.serving.runtimes.base import Framework, leading_axis_rows
from tideserve.tracing import span

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
_PER_REQUEST = ("input_fn", "predict_fn", "output_fn")


@dataclass(frozen=True)
class InvokeResult:
    body: bytes
    content_type: str
    # Set only when the handler set one: SageMaker returns the header only in that case.
    custom_attributes: str | None = None


class Context:
    """The optional `context` argument of handler functions. Besides `custom_attributes`
    (read) and `response_custom_attributes` (write), it answers the Multi Model Server
    calls that toolkit-era handlers use for the same thing."""

    __slots__ = ("custom_attributes", "response_custom_attributes", "model_dir")

    def __init__(self, model_dir: str, custom_attributes: str | None) -> None:
        self.model_dir = model_dir
        self.custom_attributes = custom_attributes
        self.response_custom_attributes: str | None = None

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "gpu_id": None}

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.custom_attributes if key.lower() == CUSTOM_ATTRIBUTES.lower() else None

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        if key.lower() == CUSTOM_ATTRIBUTES.lower():
            self.response_custom_attributes = value


@dataclass(frozen=True)
class Handler:
    """The functions one invocation runs, each taking a trailing Context. Either
    `transform_fn` is set, or input_fn, predict_fn and output_fn are."""

    input_fn: Callable[[Any, str, Context], Any] | None
    predict_fn: Callable[[Any, Any, Context], Any] | None
    output_fn: Callable[[Any, str, Context], Any] | None
    transform_fn: Callable[[Any, Any, str, str, Context], Any] | None
    user_input: bool  # the user's input_fn/transform_fn reads the body, so JSON/CSV is str


class Runtime:
    """A loaded model and the handler around it; `invoke` is the whole data path."""

    def __init__(
        self, name: str, model: Any, handler: Handler, model_dir: str, default_accept: str,
        batch_rows: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.handler = handler
        self.model_dir = model_dir
        self.default_accept = default_accept
        # A decoded request as rows to join with others (runtimes.base.Framework.batch_rows);
        # None: this model's predict is not known to take a batch.
        self.batch_rows = batch_rows

    def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str | None
    ) -> InvokeResult:
        context = Context(self.model_dir, custom_attributes)
        accept = self.accept_for(accept)
        result = _answering(self._run, body, content_type or "", accept, context)
        out, out_type = _split_result(result, accept)
        return InvokeResult(out, out_type, context.response_custom_attributes)

    def accept_for(self, accept: str) -> str:
        return self.default_accept if not accept or accept == "*/*" else accept

    def _run(self, body: bytes, content_type: str, accept: str, context: Context) -> Any:
        # Each stage is a span of a traced request (a user's own spans nest in them); an
        # untraced one pays a contextvar read per stage.
        handler = self.handler
        if handler.transform_fn is not None:
            with span("transform_fn"):
                data = self._body_for_user(body, content_type)
                return handler.transform_fn(self.model, data, content_type, accept, context)
        with span("decode"):
            decoded = self._decode(body, content_type, context)
        with span("predict"):
            prediction = self._predict(decoded, context)
        with span("encode"):
            return self._encode(prediction, accept, context)

    # The three stages one at a time, for the batcher (serving/batching.py): it decodes each
    # request, predicts once over their joined rows and encodes each request's share. Each
    # raises what invoke would (an InvokeError with the same status and message).

    def decode(self, body: bytes, content_type: str, context: Context) -> Any:
        with span("decode"):
            return _answering(self._decode, body, content_type or "", context)

    def predict(self, data: Any, context: Context) -> Any:
        with span("predict"):
            return _answering(self._predict, data, context)

    def encode(self, prediction: Any, accept: str, context: Context) -> InvokeResult:
        with span("encode"):
            result = _answering(self._encode, prediction, accept, context)
        out, out_type = _split_result(result, accept)
        return InvokeResult(out, out_type, context.response_custom_attributes)

    def _body_for_user(self, body: bytes, content_type: str) -> Any:
        if self.handler.user_input and codecs.media_type(content_type) in codecs.TEXT_TYPES:
            return codecs.as_text(body, codecs.media_type(content_type))
        return body

    def _decode(self, body: bytes, content_type: str, context: Context) -> Any:
        assert self.handler.input_fn is not None
        return self.handler.input_fn(self._body_for_user(body, content_type), content_type,
                                     context)

    def _predict(self, data: Any, context: Context) -> Any:
        assert self.handler.predict_fn is not None
        return self.handler.predict_fn(data, self.model, context)

    def _encode(self, prediction: Any, accept: str, context: Context) -> Any:
        assert self.handler.output_fn is not None
        return self.handler.output_fn(prediction, accept, context)


def _answering(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, with a model's own failure turned into the InvokeError it answers with."""
    try:
        return fn(*args)
    except InvokeError:
        raise
    except Exception as exc:  # the model's own failure: answer it, keep serving
        raise _as_invoke_error(exc) from exc


def _as_invoke_error(exc: Exception) -> InvokeError:
    lines = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        return InvokeError(status, message)
    return InvokeError(500, message)


def _split_result(result: Any, accept: str) -> tuple[bytes, str]:
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, str):
        result = result.encode()
    elif isinstance(result, bytearray | memoryview):
        result = bytes(result)
    elif not isinstance(result, bytes):
        raise InvokeError(
            500,
            f"output_fn/transform_fn returned {type(result).__name__}; return bytes or str "
            "(or a (body, content_type) tuple).",
        )
    return result, content_type


def load_user_module(model_dir: Path, env: Mapping[str, str]) -> ModuleType | None:
    """code/<SAGEMAKER_PROGRAM or inference.py>, imported under its own name with code/ on
    sys.path (so it can import its neighbours and pickles can name its classes)."""
    program = env.get("SAGEMAKER_PROGRAM") or "inference.py"
    if not program.endswith(".py"):
        program += ".py"
    code_dir = model_dir / "code"
    path = code_dir / program
    if not path.is_file():
        if env.get("SAGEMAKER_PROGRAM"):
            raise ValidationError(
                f"SAGEMAKER_PROGRAM={env['SAGEMAKER_PROGRAM']!r} but {path} does not exist."
            )
        return None
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build(model_dir: Path, framework: Framework, env: Mapping[str, str]) -> Runtime:
    """Import the user's module, load the model (pre_model_fn, model_fn, model_warmup_fn) and
    compose the per-request functions. Raises ValidationError for an invalid handler."""
    module = load_user_module(model_dir, env)
    user = {
        name: getattr(module, name)
        for name in (*_PER_REQUEST, "transform_fn", "model_fn", "pre_model_fn", "model_warmup_fn")
        if module is not None and callable(getattr(module, name, None))
    }
    clash = [n for n in _PER_REQUEST if n in user]
    if "transform_fn" in user and clash:
        raise ValidationError(
            f"{module.__file__ if module else ''} defines transform_fn together with "
            f"{', '.join(clash)}; define transform_fn alone, or input_fn/predict_fn/output_fn."
        )
    directory = str(model_dir)
    if "pre_model_fn" in user:
        user["pre_model_fn"](directory)
    model = (
        _with_context(user["model_fn"], 1)(directory, Context(directory, None))
        if "model_fn" in user
        else framework.model_fn(directory)
    )
    if "model_warmup_fn" in user:
        user["model_warmup_fn"](directory, model)
    default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or codecs.JSON
    handler = _compose(user, framework, default_accept)
    return Runtime(framework.name, model, handler, directory, default_accept,
                   _batch_rows(module, user, framework))


def _batch_rows(module: ModuleType | None, user: dict[str, Any],
                framework: Framework) -> Callable[[Any], Any] | None:
    """Framework predicts take a batch; a user's predict_fn, transform_fn or plain-Python
    model only when the module says so (`batchable = True`)."""
    declared = getattr(module, "batchable", None)
    if "transform_fn" in user or declared is False:
        return None
    if declared is True:
        return framework.batch_rows or leading_axis_rows
    return None if "predict_fn" in user else framework.batch_rows


def _compose(user: dict[str, Any], framework: Framework, default_accept: str) -> Handler:
    if "transform_fn" in user:
        return Handler(None, None, None, _with_context(user["transform_fn"], 4), True)

    def default_input(data: Any, content_type: str, context: Context) -> Any:
        return codecs.decode(data, content_type)

    def default_output(prediction: Any, accept: str, context: Context) -> Any:
        return codecs.encode(prediction, accept, default_accept)

    return Handler(
        _with_context(user["input_fn"], 2) if "input_fn" in user else default_input,
        _with_context(user["predict_fn"], 2) if "predict_fn" in user else framework.predict_fn,
        _with_context(user["output_fn"], 2) if "output_fn" in user else default_output,
        None,
        "input_fn" in user,
    )


def _with_context(fn: Callable[..., Any], arity: int) -> Callable[..., Any]:
    """`fn` called with a trailing context whether or not it declares one (decided once, at
    load, so requests pay nothing for it)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if varargs or len(positional) > arity:
        return fn

    def without_context(*args: Any) -> Any:
        return fn(*args[:-1])

    return without_context
