"""Request bodies of S3 uploads: what the headers promise about them, the aws-chunked framing,
and the digests that prove the promise kept.

What botocore 1.44 sends (observed, `put_object`, `upload_part`, `upload_file`):
- over http://: the body as is, `X-Amz-Content-SHA256: <hex sha256>` (signed), and a flexible
  checksum in a header (`x-amz-checksum-crc32`, base64 of the big-endian CRC-32);
- over https:// (e.g. behind a TLS proxy): `X-Amz-Content-SHA256:
  STREAMING-UNSIGNED-PAYLOAD-TRAILER`, `Content-Encoding: aws-chunked`,
  `X-Amz-Decoded-Content-Length`, and the checksum in a trailer: the body is
  `<hex size>\r\n<data>\r\n ... 0\r\nx-amz-checksum-crc32:<b64>\r\n\r\n`.
Other SDKs send `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`, the same framing with
`;chunk-signature=<sig>` after each size (verified by s3_auth.ChunkVerifier).

Checksums verified: CRC32 (zlib), SHA1, SHA256. CRC32C and CRC64NVME have no implementation
here (botocore itself needs awscrt for them); their values are stored and echoed unverified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from tideserve.errors import ValidationError
from tideserve.objectstore.s3_auth import verify_payload

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_PREFIX = "STREAMING-"
SIGNED_STREAMING = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
)
_MAX_LINE = 8192


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _new_checksum(algorithm: str) -> _Hasher | None:
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm in ("SHA1", "SHA256"):
        return hashlib.new(algorithm.lower())
    return None


@dataclass(frozen=True)
class BodyExpectations:
    """What the request's headers promise about its body; read once, at the edge."""

    content_sha256: str  # x-amz-content-sha256 as sent: hex, UNSIGNED-PAYLOAD or STREAMING-*
    content_md5: bytes | None  # decoded Content-MD5
    checksum_algorithm: str | None  # "CRC32", ... from a header, x-amz-trailer or the SDK hint
    checksum_value: str | None  # base64 from an x-amz-checksum-* header; None: in the trailer
    decoded_length: int | None  # X-Amz-Decoded-Content-Length (bytes) for aws-chunked bodies

    @property
    def chunked(self) -> bool:
        return self.content_sha256.startswith(STREAMING_PREFIX)

    @property
    def signed_chunks(self) -> bool:
        return self.content_sha256 in SIGNED_STREAMING

    @property
    def hex_sha256(self) -> str | None:
        value = self.content_sha256
        return value.lower() if len(value) == 64 and _is_hex(value) else None


def expectations_from(headers: Mapping[str, str]) -> BodyExpectations:
    """`headers` has lowercase names."""
    declared = headers.get("x-amz-content-sha256", UNSIGNED)
    md5 = headers.get("content-md5")
    algorithm, value = None, None
    for name in ALGORITHMS:
        if f"x-amz-checksum-{name.lower()}" in headers:
            algorithm, value = name, headers[f"x-amz-checksum-{name.lower()}"]
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    if algorithm is None and trailer.startswith("x-amz-checksum-"):
        algorithm = trailer[len("x-amz-checksum-") :].upper()
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise ValidationError(
            f"Checksum algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}.",
            code="InvalidRequest",
        )
    decoded = headers.get("x-amz-decoded-content-length")
    if decoded is not None and not decoded.isdigit():
        raise ValidationError(
            f"X-Amz-Decoded-Content-Length must be a number of bytes; got {decoded!r}.",
            code="InvalidArgument",
        )
    return BodyExpectations(
        declared, _decode_md5(md5), algorithm, value, int(decoded) if decoded else None
    )


def _decode_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 16:
        raise ValidationError("The Content-MD5 you specified was invalid.", code="InvalidDigest")
    return digest


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


class Digests:
    """Running digests of the decoded body: MD5 (the ETag), SHA-256 when a hex payload hash
    was signed, and the flexible checksum when it can be computed."""

    def __init__(self, expect: BodyExpectations) -> None:
        self.expect = expect
        self.size = 0
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256() if expect.hex_sha256 else None
        algorithm = expect.checksum_algorithm
        self.checksum = _new_checksum(algorithm) if algorithm else None

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        if self.checksum is not None:
            self.checksum.update(data)

    def verify(self, trailers: Mapping[str, str]) -> dict[str, str]:
        """Raise if the body broke a promise; return the checksums to store (alg -> base64)."""
        expect = self.expect
        if self.sha256 is not None and expect.hex_sha256 is not None:
            verify_payload(expect.hex_sha256, self.sha256.hexdigest())
        if expect.decoded_length is not None and expect.decoded_length != self.size:
            raise ValidationError(
                f"You did not provide the number of bytes specified by the "
                f"X-Amz-Decoded-Content-Length header ({expect.decoded_length}; got {self.size}).",
                code="IncompleteBody",
            )
        if expect.content_md5 is not None and expect.content_md5 != self.md5.digest():
            raise ValidationError(
                "The Content-MD5 you specified did not match what we received.", code="BadDigest"
            )
        return self._verify_checksum(trailers)

    def _verify_checksum(self, trailers: Mapping[str, str]) -> dict[str, str]:
        algorithm = self.expect.checksum_algorithm
        if algorithm is None:
            return {}
        value = self.expect.checksum_value
        if value is None:
            value = trailers.get(f"x-amz-checksum-{algorithm.lower()}")
        if value is None:
            raise ValidationError(
                f"The request named x-amz-checksum-{algorithm.lower()} in X-Amz-Trailer but "
                "its body's trailer did not carry it.",
                code="MalformedTrailerError",
            )
        if self.checksum is not None and base64.b64encode(self.checksum.digest()).decode() != (
            value
        ):
            raise ValidationError(
                f"The {algorithm} you specified did not match the calculated checksum.",
                code="BadDigest",
            )
        return {algorithm: value}


# -- aws-chunked framing --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkStart:
    size: int  # bytes of data that follow
    signature: str | None  # chunk-signature=..., for signed streaming


@dataclass(frozen=True)
class ChunkEnd:
    pass


Event = bytes | ChunkStart | ChunkEnd


class AwsChunkedDecoder:
    """Incremental decoder: feed raw body bytes, get data and chunk boundaries back; after the
    final zero-size chunk, `trailers` holds the trailing headers (lowercase names)."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._state = "size"  # size | data | data_end | trailer | done
        self._remaining = 0
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._state == "data":
                take = min(self._remaining, end - pos)
                events.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "data_end"
                continue
            if self._state == "done":
                raise _framing("data after the final chunk")
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line += data[pos:]
                if len(self._line) > _MAX_LINE:
                    raise _framing("a chunk header line is too long")
                break
            self._line += data[pos:newline]
            pos = newline + 1
            line = bytes(self._line).rstrip(b"\r").decode("latin-1")
            self._line.clear()
            self._on_line(line, events)
        return events

    def _on_line(self, line: str, events: list[Event]) -> None:
        if self._state == "size":
            size_text, _, extension = line.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise _framing(f"bad chunk size {size_text!r}") from None
            signature = None
            if extension.strip().startswith("chunk-signature="):
                signature = extension.strip()[len("chunk-signature=") :]
            events.append(ChunkStart(size, signature))
            if size == 0:
                events.append(ChunkEnd())
                self._state = "trailer"
            else:
                self._state, self._remaining = "data", size
        elif self._state == "data_end":
            if line:
                raise _framing("chunk data is longer than its declared size")
            events.append(ChunkEnd())
            self._state = "size"
        elif not line:
            self._state = "done"
        else:
            name, sep, value = line.partition(":")
            if not sep:
                raise _framing(f"bad trailer line {line!r}")
            self.trailers[name.strip().lower()] = value.strip()

    def finish(self) -> None:
        if self._state != "done":
            raise ValidationError(
                "The request body ended before the final aws-chunked chunk.",
                code="IncompleteBody",
            )


def _framing(why: str) -> ValidationError:
    return ValidationError(f"Malformed aws-chunked body: {why}.", code="InvalidRequest")
