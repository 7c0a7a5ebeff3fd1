"""The sample payloads a load test replays: ContainerConfig.PayloadConfig.SamplePayloadUrl.

AWS expects one gzip-compressed tar whose members are request bodies, each sent as-is with
SupportedContentTypes[0] (spec §11.2). tideserve reads exactly that; as a convenience an
object that is not gzip-compressed is one payload by itself. Directory entries, links and other
non-files in the tar are ignored, and nothing is extracted to disk by its member name (no
path traversal can follow from a member's name). An empty object, a tar with no regular
file, or a missing object is a ValidationException at CreateInferenceRecommendationsJob.
"""

from __future__ import annotations

import io
import tarfile

from tideserve.errors import NotFoundError, ValidationError
from tideserve.transform.objects import JobObjects

MAX_PAYLOAD_BYTES = 6 * 2**20  # InvokeEndpoint's payload limit, per body
MAX_PAYLOADS = 1000
MAX_ARCHIVE_BYTES = 256 * 2**20
FIELD = "InputConfig.ContainerConfig.PayloadConfig.SamplePayloadUrl"


def read_payloads(objects: JobObjects, uri: str) -> list[bytes]:
    if not uri.startswith("s3://"):
        raise ValidationError(f"{FIELD} {uri!r} must be an s3:// URI")
    try:
        size = objects.size(uri)
    except NotFoundError:
        size = None
    if size is None:
        raise ValidationError(f"{FIELD} {uri}: no such object (upload the tar.gz of sample "
                              "payloads first)")
    if size == 0:
        raise ValidationError(f"{FIELD} {uri} is empty: it must be a tar.gz of sample payloads")
    if size > MAX_ARCHIVE_BYTES:
        raise ValidationError(f"{FIELD} {uri} is {size} bytes; at most {MAX_ARCHIVE_BYTES}")
    with objects.open(uri) as f:
        data = f.read()
    payloads = _members(data) if data[:2] == b"\x1f\x8b" else [data]
    if not payloads:
        raise ValidationError(f"{FIELD} {uri}: the archive holds no sample payload (no "
                              "non-empty regular file)")
    return payloads


def _members(data: bytes) -> list[bytes]:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except (tarfile.TarError, OSError):
        raise ValidationError(f"{FIELD}: a gzip object must be a tar.gz of sample payloads"
                              ) from None
    out = []
    with tar:
        for member in tar:
            if not member.isreg() or member.size == 0:
                continue
            if member.size > MAX_PAYLOAD_BYTES:
                raise ValidationError(f"{FIELD}: sample payload {member.name!r} is "
                                      f"{member.size} bytes; InvokeEndpoint takes at most "
                                      f"{MAX_PAYLOAD_BYTES}")
            f = tar.extractfile(member)
            if f is not None:
                out.append(f.read())
            if len(out) >= MAX_PAYLOADS:
                break
    return out
