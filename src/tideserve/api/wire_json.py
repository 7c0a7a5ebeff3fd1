"""awsJson 1.0 / 1.1 bodies (spec §7.1): the input structure as a JSON object, timestamps as
epoch seconds (ISO-8601 text also accepted), blobs base64, non-finite doubles as the strings
"NaN" / "Infinity" / "-Infinity"; errors as {"__type": code, "message": text}."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from botocore.model import Shape

from tideserve.api.shapes import (
    Codec,
    SerializationError,
    b64_blob,
    decode,
    encode,
    epoch_seconds,
    to_datetime,
)


def _double_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


JSON_CODEC = Codec(
    timestamp_in=to_datetime,
    blob_in=b64_blob,
    timestamp_out=epoch_seconds,
    blob_out=lambda data: base64.b64encode(data).decode("ascii"),
    double_out=_double_out,
)


def parse_input(body: bytes, shape: Shape | None) -> dict[str, Any]:
    if not body.strip():
        document: Any = {}
    else:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"Could not parse the request body as JSON: {exc}") from exc
    result: dict[str, Any] = decode(shape, document, JSON_CODEC)
    return result


def render_output(shape: Shape | None, result: dict[str, Any] | None) -> bytes:
    document = encode(shape, result or {}, JSON_CODEC) if shape is not None else {}
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}, separators=(",", ":")).encode()
