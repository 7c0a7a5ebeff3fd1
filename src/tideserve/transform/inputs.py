"""Which objects a job transforms (spec §3.1): every object under an S3Prefix, or those a
ManifestFile names — a JSON array whose first element is `{"prefix": "s3://b/p/"}` and whose
others are keys relative to it. Each comes with the base its output name is relative to."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tideserve.errors import TideserveError
from tideserve.transform.objects import JobObjects
from tideserve.transform.spec import TransformJobSpec

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class InputMissing(Exception):
    """The job has nothing to read; the message is its FailureReason."""


@dataclass(frozen=True)
class Inputs:
    base: str  # the prefix output names are relative to
    objects: list[tuple[str, int]]  # (s3:// URI, size), in S3 key order (manifest order)


def list_inputs(objects: JobObjects, spec: TransformJobSpec) -> Inputs:
    if spec.data_type == "ManifestFile":
        return _manifest(objects, spec.input_uri)
    found = objects.list(spec.input_uri)
    if not found:
        raise InputMissing(f"ClientError: No objects were found under the input S3Uri "
                           f"{spec.input_uri}: check the prefix and that the data is uploaded.")
    return Inputs(spec.input_uri, found)


def _manifest(objects: JobObjects, uri: str) -> Inputs:
    size = objects.size(uri)
    if size is None:
        raise InputMissing(f"ClientError: The manifest file {uri} does not exist.")
    if size > MAX_MANIFEST_BYTES:
        raise InputMissing(f"ClientError: The manifest file {uri} is larger than "
                           f"{MAX_MANIFEST_BYTES} bytes.")
    with objects.open(uri) as f:
        text = f.read()
    try:
        entries = json.loads(text)
        prefix = entries[0]["prefix"]
        keys = [str(k) for k in entries[1:]]
        if not isinstance(prefix, str) or not prefix.startswith("s3://"):
            raise ValueError("the prefix is not an s3:// URI")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputMissing(
            f"ClientError: The manifest file {uri} is not a JSON array of the form "
            f'[{{"prefix": "s3://bucket/prefix/"}}, "relative/key", ...]: {exc}.') from None
    base = prefix if prefix.endswith("/") else prefix + "/"
    found = []
    for key in keys:
        target = base + key.lstrip("/")
        try:
            size = objects.size(target)
        except TideserveError as exc:
            raise InputMissing(f"ClientError: The manifest file {uri} names {key}: "
                               f"{exc.message}") from None
        if size is None:
            raise InputMissing(f"ClientError: The manifest file {uri} names {target}, which "
                               "does not exist.")
        found.append((target, size))
    if not found:
        raise InputMissing(f"ClientError: The manifest file {uri} names no objects.")
    return Inputs(base, found)
