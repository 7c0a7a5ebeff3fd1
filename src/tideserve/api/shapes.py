"""botocore's service models as the source of truth for every AWS shape we speak, and the
shape-directed conversion between wire documents and plain Python values.

Handlers see and return plain Python: str, int, float, bool, aware UTC `datetime`, `bytes`,
dicts keyed by the AWS member name, and lists. The wire modules (JSON, CBOR, Query) differ only
in how a timestamp, a blob and a non-finite double are written, so one walker serves all of
them, parameterised by a `Codec`.

A value of the wrong wire type (a string where an integer belongs) raises `SerializationError`
— AWS's json protocols answer that with `SerializationException`, before any constraint is
looked at.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from tideserve.errors import ValidationError

# SigV4 signing name -> botocore model name, for the services spoken over an RPC protocol.
# (sagemaker-runtime shares the `sagemaker` signing name and is routed by path instead.)
RPC_MODELS = {
    "sagemaker": "sagemaker",
    "application-autoscaling": "application-autoscaling",
    "monitoring": "cloudwatch",
    "logs": "logs",  # CloudWatch Logs (tideserve.logs)
    "ce": "ce",
    "budgets": "budgets",  # AWS Budgets (tideserve.budgets)
    # Query-protocol globals that SDKs call before anything else (api/sts.py, access/iam_api.py).
    "sts": "sts",
    "iam": "iam",
    "cloudtrail": "cloudtrail",  # LookupEvents (audit/)
    "cloudformation": "cloudformation",  # stacks and change sets (stacks/)
    # tideserve's own operations (spot interruption on demand), in botocore's model format
    # under api/models/; client.py hands the same directory to boto3.
    "tideserve": "tideserve",
}
# Where tideserve's own service models live, in botocore's data layout.
MODELS_DIR = Path(__file__).parent / "models"
_ALL_MODELS = (*RPC_MODELS.values(), "sagemaker-runtime")


class SerializationError(ValidationError):
    """The wire value's type does not match the shape (a string for an integer, ...)."""

    code = "SerializationException"


@cache
def _session() -> botocore.session.Session:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.append(str(MODELS_DIR))
    return session


@cache
def service_model(name: str) -> ServiceModel:
    """A botocore service model by botocore name (`cloudwatch`, not `monitoring`); cached."""
    if name not in _ALL_MODELS:
        raise KeyError(f"tideserve does not speak the {name!r} API")
    return _session().get_service_model(name)


def rpc_model(signing_name: str) -> ServiceModel:
    return service_model(RPC_MODELS[signing_name])


def find_operation(model: ServiceModel, name: str) -> OperationModel | None:
    # operation_model() is memoised by botocore, so its input/output shapes (and their member
    # tables) are built once per process.
    if name not in _operation_names(model.service_name):
        return None
    return model.operation_model(name)


@cache
def _operation_names(service_name: str) -> frozenset[str]:
    return frozenset(service_model(service_name).operation_names)


def lower_camel(name: str) -> str:
    """AWS prints member paths with the first letter lowered: EndpointName -> endpointName."""
    return name[:1].lower() + name[1:]


def serialized_name(member_name: str, member_shape: Shape) -> str:
    return str(member_shape.serialization.get("name", member_name))


# -- timestamps -----------------------------------------------------------------------------------


def to_datetime(value: Any) -> datetime:
    """Epoch seconds (number or numeric string), ISO-8601 text, or a datetime -> aware UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), tz=UTC)
        except ValueError:
            pass
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"{type(value).__name__} is not a timestamp")


def epoch_seconds(value: datetime) -> float | int:
    """Epoch seconds, as an int when whole (botocore accepts both; ints read better)."""
    seconds = to_datetime(value).timestamp()
    return int(seconds) if seconds.is_integer() else round(seconds, 6)


# -- decoding: wire document -> Python ------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """How one wire format spells the scalars that JSON-like documents can't hold natively."""

    timestamp_in: Callable[[Any], datetime]
    blob_in: Callable[[Any], bytes]
    timestamp_out: Callable[[datetime], Any]
    blob_out: Callable[[bytes], Any]
    double_out: Callable[[float], Any]


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode(shape: Shape | None, value: Any, codec: Codec, path: str = "") -> Any:
    """Turn a parsed wire document into plain Python by `shape`; unknown members are dropped."""
    if shape is None:
        return {}
    kind = shape.type_name
    if kind == "structure":
        return _decode_structure(shape, value, codec, path)
    if kind == "list":
        items = _expect(value, list, path)
        return [decode(shape.member, v, codec, f"{path}.member") for v in items if v is not None]
    if kind == "map":
        items = _expect(value, dict, path)
        return {
            decode(shape.key, k, codec, path): decode(shape.value, v, codec, f"{path}.{k}")
            for k, v in items.items()
            if v is not None
        }
    return _decode_scalar(kind, value, codec, path)


def _decode_structure(shape: Shape, value: Any, codec: Codec, path: str) -> Any:
    if shape.is_document_type:
        return value
    fields = _expect(value, dict, path)
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        raw = fields.get(serialized_name(name, member))
        if raw is not None:
            out[name] = decode(member, raw, codec, f"{path}.{name}" if path else name)
    return out


def _decode_scalar(kind: str, value: Any, codec: Codec, path: str) -> Any:
    try:
        if kind == "string":
            return _expect(value, str, path)
        if kind in ("integer", "long"):
            return _to_int(value, path)
        if kind in ("float", "double"):
            return _to_float(value, path)
        if kind == "boolean":
            return _expect(value, bool, path)
        if kind == "timestamp":
            return codec.timestamp_in(value)
        if kind == "blob":
            return codec.blob_in(value)
    except (ValueError, OverflowError, OSError, binascii.Error) as exc:
        raise SerializationError(f"Could not read {kind} at '{path}': {exc}") from exc
    return value


def _to_int(value: Any, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise SerializationError(f"{_wire_kind(value)} can not be converted to an Integer at '{path}'")


def _to_float(value: Any, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise SerializationError(f"{_wire_kind(value)} can not be converted to a Double at '{path}'")


def _expect(value: Any, kind: type, path: str) -> Any:
    if isinstance(value, kind):
        return value
    expected = {list: "a list", dict: "a structure or map", str: "a String", bool: "a Boolean"}
    raise SerializationError(
        f"{_wire_kind(value)} can not be converted to {expected[kind]} at '{path or '.'}'"
    )


def _wire_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN_VALUE"
    if isinstance(value, str):
        return "STRING_VALUE"
    if isinstance(value, int | float):
        return "NUMBER_VALUE"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return type(value).__name__.upper()


def b64_blob(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError(f"{type(value).__name__} is not base64 text")
    return base64.b64decode(value, validate=True)


# -- encoding: Python -> wire document -------------------------------------------------------------


def encode(shape: Shape | None, value: Any, codec: Codec) -> Any:
    """Turn a handler's Python result into a wire document by `shape`; None members are
    omitted and members the shape does not know are dropped."""
    if shape is None or value is None:
        return {} if shape is None else None
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[serialized_name(name, member)] = encode(member, item, codec)
        return out
    if kind == "list":
        return [encode(shape.member, v, codec) for v in value]
    if kind == "map":
        return {k: encode(shape.value, v, codec) for k, v in value.items()}
    if kind == "timestamp":
        return codec.timestamp_out(to_datetime(value))
    if kind == "blob":
        return codec.blob_out(value.encode() if isinstance(value, str) else bytes(value))
    if kind in ("float", "double"):
        return codec.double_out(float(value))
    if kind in ("integer", "long"):
        return int(value)
    return value
