"""Names in the object store: bucket names, object keys, `s3://` URIs and virtual-host Host
headers. Pure functions; every refusal names the value and the rule it broke.

Keys become real relative paths (`a/b/c.tar.gz` is the file `<root>/<bucket>/a/b/c.tar.gz`,
which is how serving/archive.py resolves ModelDataUrl), so a key must be a path that stays
inside its bucket and means exactly one file: no `.` or `..` segment, no empty segment (`a//b`
would alias `a/b`), no leading `/`, no NUL, and no segment longer than the 255 bytes a file
name may have. S3 itself accepts such keys; we refuse them with 400 InvalidArgument.

A key ending in `/` is a *folder marker* (what consoles and some tools create to show an empty
"folder"). It is accepted only with an empty body and is kept as a directory plus an entry in
the bucket's marker list; see store.py.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlparse

from tideserve.errors import ValidationError

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def is_valid_bucket_name(name: str) -> bool:
    """S3's general-purpose bucket naming rules (3-63 characters, lowercase letters, digits,
    dots and hyphens, starting and ending with a letter or digit, not an IP address)."""
    if not _BUCKET.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        return False
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


def check_bucket_name(name: str) -> str:
    if not is_valid_bucket_name(name):
        raise ValidationError(
            f"The specified bucket is not valid: {name!r}. Bucket names are 3-63 lowercase "
            "letters, digits, dots and hyphens, start and end with a letter or digit, and are "
            "not IP addresses.",
            code="InvalidBucketName",
        )
    return name


def check_key(key: str) -> str:
    """Return `key` if it can be stored as a file inside its bucket, else raise."""
    encoded = key.encode("utf-8", "surrogatepass")
    if not key:
        raise ValidationError("An object key must not be empty.", code="InvalidArgument")
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(
            f"Your key is too long: {len(encoded)} bytes; the maximum is {MAX_KEY_BYTES}.",
            code="KeyTooLongError",
        )
    body = key[:-1] if key.endswith("/") else key
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise ValidationError(
                f"Object key {key!r} is not stored: tideserve keeps objects as files, so a key "
                "must not start with '/' or contain empty, '.' or '..' segments.",
                code="InvalidArgument",
            )
        if "\x00" in segment or len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise ValidationError(
                f"Object key {key!r} is not stored: a '/'-separated segment must be at most "
                f"{MAX_SEGMENT_BYTES} bytes and must not contain NUL.",
                code="InvalidArgument",
            )
    return key


def is_folder_marker(key: str) -> bool:
    return key.endswith("/")


def parse_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); the key may be empty (a bucket or prefix URI)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValidationError(f"{uri!r} is not an s3://bucket/key URI.")
    return parsed.netloc, parsed.path[1:] if parsed.path.startswith("/") else parsed.path


def bucket_from_host(host: str, endpoint_hosts: tuple[str, ...] = ()) -> str | None:
    """The bucket a virtual-host-style Host header names, or None for path style.

    `<bucket>.<endpoint host>` for each configured endpoint host, then the two shapes botocore
    produces against custom endpoints: `<bucket>.s3.<anything>` (split at the first `.s3.`, so
    bucket names containing `.s3.` need path style) and `<bucket>.localhost` (botocore with
    `addressing_style='virtual'` against `http://localhost:PORT`). An IP address or a bare
    endpoint host is path style.
    """
    name = _strip_port(host).lower().rstrip(".")
    for endpoint in endpoint_hosts:
        suffix = "." + _strip_port(endpoint).lower()
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    marker = name.find(".s3.")
    if marker > 0:
        return name[:marker]
    if name.endswith(".localhost"):
        bucket = name[: -len(".localhost")]
        return bucket if bucket and bucket != "s3" else None
    return None


def _strip_port(host: str) -> str:
    if host.startswith("["):  # IPv6 literal: never a bucket
        return host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
