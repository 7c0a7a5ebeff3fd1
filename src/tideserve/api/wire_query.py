"""The AWS Query protocol (CloudWatch as older botocore and other SDKs speak it, spec §7):
form-encoded `Action=<Op>&Version=...` requests, XML responses.

Requests flatten the input: `Dimensions.member.1.Name=...`, maps as `Tags.entry.1.key/value`,
an empty list as `Dimensions=`. Responses:

    <GetMetricStatisticsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
      <GetMetricStatisticsResult>...lists as <member>, timestamps ISO-8601...</...Result>
      <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
    </GetMetricStatisticsResponse>

and errors `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>
<RequestId>..</RequestId></ErrorResponse>`.
"""

from __future__ import annotations

import base64
import math
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape

from tideserve.api.shapes import SerializationError, b64_blob, serialized_name, to_datetime

CONTENT_TYPE = "text/xml"
_LEAF = ""  # key under which a tree node keeps its own text value

# -- requests ------------------------------------------------------------------------------------


def parse_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise SerializationError(f"The request body is not UTF-8: {exc}") from exc


def parse_input(params: dict[str, str], shape: Shape | None) -> dict[str, Any]:
    """Rebuild the input structure from the flattened form parameters by `shape`."""
    if shape is None:
        return {}
    tree: dict[str, Any] = {}
    for key, value in params.items():
        if key in ("Action", "Version"):
            continue
        node = tree
        for part in key.split("."):
            node = node.setdefault(part, {})
        node[_LEAF] = value
    result: dict[str, Any] = _from_tree(shape, tree, "")
    return result


def _from_tree(shape: Shape, node: dict[str, Any], path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            child = node.get(serialized_name(name, member))
            if child is not None:
                out[name] = _from_tree(member, child, f"{path}.{name}" if path else name)
        return out
    if kind == "list":
        items = node if shape.serialization.get("flattened") else node.get(_member_name(shape), {})
        return [_from_tree(shape.member, items[i], path) for i in _indexes(items)]
    if kind == "map":
        entries = node if shape.serialization.get("flattened") else node.get("entry", {})
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        return {
            _from_tree(shape.key, entries[i][key_name], path): _from_tree(
                shape.value, entries[i].get(value_name, {_LEAF: ""}), path
            )
            for i in _indexes(entries)
            if key_name in entries[i]
        }
    if _LEAF not in node:
        raise SerializationError(f"Expected a value for '{path}', found nested parameters")
    return _scalar(kind, node[_LEAF], path)


def _member_name(shape: Shape) -> str:
    return str(shape.member.serialization.get("name", "member"))


def _indexes(items: dict[str, Any]) -> list[str]:
    return sorted((k for k in items if k.isdigit()), key=int)


def _scalar(kind: str, text: str, path: str) -> Any:
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(f"'{text}' is not true or false")
            return text.lower() == "true"
        if kind == "timestamp":
            return to_datetime(text)
        if kind == "blob":
            return b64_blob(text)
    except ValueError as exc:
        raise SerializationError(f"Invalid {kind} value '{text}' for parameter {path}") from exc
    return text


# -- responses -----------------------------------------------------------------------------------


def render_output(
    operation: OperationModel, result: dict[str, Any] | None, request_id: str
) -> bytes:
    name = operation.name
    namespace = operation.service_model.metadata.get("xmlNamespace", "")
    parts = [f'<{name}Response xmlns="{namespace}">']
    shape = operation.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        parts.append(f"<{wrapper}>")
        _members(shape, result or {}, parts)
        parts.append(f"</{wrapper}>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
    parts.append(f"</{name}Response>")
    return "".join(parts).encode()


def error_body(code: str, message: str, fault: str, request_id: str, namespace: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def _members(shape: Shape, value: dict[str, Any], parts: list[str]) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _element(member, item, serialized_name(name, member), parts)


def _element(shape: Shape, value: Any, tag: str, parts: list[str]) -> None:
    kind = shape.type_name
    flattened = shape.serialization.get("flattened", False)
    if kind == "list":
        if flattened:
            for item in value:
                _element(shape.member, item, tag, parts)
            return
        parts.append(f"<{tag}>")
        for item in value:
            _element(shape.member, item, _member_name(shape), parts)
        parts.append(f"</{tag}>")
    elif kind == "map":
        _map(shape, value, tag, flattened, parts)
    elif kind == "structure":
        parts.append(f"<{tag}>")
        _members(shape, value, parts)
        parts.append(f"</{tag}>")
    else:
        parts.append(f"<{tag}>{_text(kind, value)}</{tag}>")


def _map(shape: Shape, value: dict[str, Any], tag: str, flattened: bool, parts: list[str]) -> None:
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    if not flattened:
        parts.append(f"<{tag}>")
    for key, item in value.items():
        parts.append(f"<{tag}>" if flattened else "<entry>")
        _element(shape.key, key, key_name, parts)
        _element(shape.value, item, value_name, parts)
        parts.append(f"</{tag}>" if flattened else "</entry>")
    if not flattened:
        parts.append(f"</{tag}>")


def _text(kind: str, value: Any) -> str:
    if kind == "timestamp":
        return iso8601(to_datetime(value))
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    if kind in ("float", "double"):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)
    return escape(str(value))


def iso8601(when: datetime) -> str:
    """2024-01-01T00:00:00Z, with milliseconds when there are any (as CloudWatch writes)."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond // 1000:03d}"
    return text + "Z"
