"""Upload framings botocore does not send over http:// but S3 clients do: aws-chunked bodies
with a trailing checksum (botocore over https) and signed chunks (other SDKs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.objectstore.conftest import KEY_ID, SECRET, S3Server
from tideserve.errors import AuthError
from tideserve.objectstore.body import AwsChunkedDecoder, ChunkStart
from tideserve.objectstore.s3_auth import ChunkVerifier, verify


class _DeclaredPayload(S3SigV4Auth):
    """botocore's S3 signer, signing whatever X-Amz-Content-SHA256 we declare."""

    def __init__(self, declared: str) -> None:
        super().__init__(Credentials(KEY_ID, SECRET), "s3", "us-east-1")
        self.declared = declared

    def payload(self, request: Any) -> str:
        return self.declared


def _put(url: str, wire: bytes, headers: dict[str, str], declared: str) -> httpx.Response:
    request = AWSRequest(method="PUT", url=url, data=wire, headers=headers)
    _DeclaredPayload(declared).add_auth(request)
    prepared = request.prepare()
    return httpx.put(url, content=wire, headers=dict(prepared.headers))


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _framed(data: bytes, size: int, trailer: str) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return wire + b"0\r\n" + trailer.encode() + b"\r\n"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [("good", 200, None), ("wrong checksum", 400, "BadDigest"), ("cut", 400, "IncompleteBody")],
)
def test_aws_chunked_with_trailing_crc32(
    s3_server: S3Server, bucket: str, s3: Any, case: str, status: int, code: str | None
) -> None:
    data = b"0123456789abcdef" * 5000
    checksum = _crc32(b"tampered" if case == "wrong checksum" else data)
    wire = _framed(data, 65536, f"x-amz-checksum-crc32:{checksum}\r\n")
    if case == "cut":
        wire = wire[: len(wire) // 2]
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "Content-Type": "application/octet-stream",
    }
    url = f"{s3_server.url}/{bucket}/chunked"
    response = _put(url, wire, headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert response.status_code == status, response.text
    if code is not None:
        assert f"<Code>{code}</Code>" in response.text
        assert not (s3_server.root / bucket / "chunked").exists()
        return
    assert response.headers["x-amz-checksum-crc32"] == checksum
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got.get("ContentEncoding") is None  # aws-chunked is transport, not stored
    assert got["ChecksumCRC32"] == checksum


# The worked example of AWS's "Transferring Payload in Multiple Chunks" page: a 64 KiB chunk and
# a 1 KiB chunk of 'a', example credentials, 2013-05-24.
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_HEADERS = [
    ("Host", "s3.amazonaws.com"),
    ("x-amz-date", "20130524T000000Z"),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    (
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,"
        "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    ),
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ("Content-Encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("Content-Length", "66824"),
]
EXAMPLE_CHUNKS = [
    (b"a" * 65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
    (b"a" * 1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
    (b"", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
]


def _example_wire(chunks: list[tuple[bytes, str]]) -> bytes:
    return b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(d), s.encode(), d) for d, s in chunks)


def _verify_example(wire: bytes) -> bytes:
    identity = verify(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        EXAMPLE_HEADERS,
        {"AKIAIOSFODNN7EXAMPLE": EXAMPLE_SECRET}.get,
        now=1369353600.0,  # 2013-05-24T00:00:00Z
    )
    decoder, chunks, data = AwsChunkedDecoder(), ChunkVerifier(identity), bytearray()
    for event in decoder.feed(wire):
        if isinstance(event, bytes):
            chunks.update(event)
            data += event
        elif isinstance(event, ChunkStart):
            chunks.start(event.signature)
        else:
            chunks.end()
    decoder.finish()
    return bytes(data)


def test_signed_chunks_match_the_aws_worked_example() -> None:
    assert len(_example_wire(EXAMPLE_CHUNKS)) == 66824
    assert _verify_example(_example_wire(EXAMPLE_CHUNKS)) == b"a" * 66560


def test_a_changed_signed_chunk_is_refused() -> None:
    tampered = [(b"b" * 65536, EXAMPLE_CHUNKS[0][1]), *EXAMPLE_CHUNKS[1:]]
    with pytest.raises(AuthError) as refused:
        _verify_example(_example_wire(tampered))
    assert refused.value.code == "SignatureDoesNotMatch"


def test_signed_chunks_through_the_server(s3_server: S3Server, bucket: str, s3: Any) -> None:
    """A signed-streaming upload as the AWS SDKs for Java/Go send it, chained from the
    request's own signature (computed here from the documented formula)."""
    data = [b"x" * 70000, b"y" * 1000]
    decoded = b"".join(data)
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(decoded))}
    url = f"{s3_server.url}/{bucket}/signed-stream"
    request = AWSRequest(method="PUT", url=url, data=b"", headers=headers)
    signer = _DeclaredPayload("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    signer.add_auth(request)
    prepared = request.prepare()
    seed = prepared.headers["Authorization"].rsplit("Signature=", 1)[1]
    amz_date = prepared.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = hmac.new(("AWS4" + SECRET).encode(), amz_date[:8].encode(), hashlib.sha256).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    previous, chunks = seed, []
    for piece in [*data, b""]:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(piece).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        chunks.append((piece, previous))
    sent = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    response = httpx.put(url, content=_example_wire(chunks), headers=sent)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="signed-stream")["Body"].read() == decoded
