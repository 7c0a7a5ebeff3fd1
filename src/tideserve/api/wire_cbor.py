"""Smithy RPC v2 CBOR bodies (CloudWatch, spec §5/§7): `POST /service/<ServiceId>/operation/<Op>`
with `smithy-protocol: rpc-v2-cbor`; the body is a CBOR map, timestamps are CBOR tag 1 (epoch
seconds), blobs are byte strings; errors are a map {"__type": code, "message": text}."""

from __future__ import annotations

from typing import Any

import cbor2
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

CONTENT_TYPE = "application/cbor"

CBOR_CODEC = Codec(
    # cbor2 already turns tag 1 into an aware datetime; numbers and text still pass through
    # to_datetime for clients that send an untagged epoch.
    timestamp_in=to_datetime,
    blob_in=b64_blob,
    timestamp_out=lambda when: cbor2.CBORTag(1, epoch_seconds(when)),
    blob_out=bytes,
    double_out=float,
)


def parse_input(body: bytes, shape: Shape | None) -> dict[str, Any]:
    if not body:
        document: Any = {}
    else:
        try:
            document = cbor2.loads(body)
        except (cbor2.CBORDecodeError, ValueError) as exc:
            raise SerializationError(f"Could not parse the request body as CBOR: {exc}") from exc
    result: dict[str, Any] = decode(shape, document, CBOR_CODEC)
    return result


def render_output(shape: Shape | None, result: dict[str, Any] | None) -> bytes:
    document = encode(shape, result or {}, CBOR_CODEC) if shape is not None else {}
    return bytes(cbor2.dumps(document))


def error_body(code: str, message: str) -> bytes:
    return bytes(cbor2.dumps({"__type": code, "message": message}))
