"""S3's REST-XML documents: rendering responses and reading the few request bodies S3 takes
(CreateBucketConfiguration, CompleteMultipartUpload, Delete)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TypeAlias
from xml.sax.saxutils import escape

from tideserve.errors import ValidationError

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'

# A node is text, or a (name, children) pair, or a list of nodes.
Node: TypeAlias = str | int | bool | None | tuple[str, "Node"] | list["Node"]


def render(root: str, children: Node) -> bytes:
    return (PROLOG + f'<{root} xmlns="{NAMESPACE}">{_render(children)}</{root}>').encode()


def render_plain(root: str, children: Node) -> bytes:
    """A document without the namespace (S3's <Error> has none)."""
    return (PROLOG + f"<{root}>{_render(children)}</{root}>").encode()


def _render(node: Node) -> str:
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | str):
        return escape(str(node))
    if isinstance(node, tuple):
        name, inner = node
        return f"<{name}>{_render(inner)}</{name}>"
    return "".join(_render(n) for n in node)


def iso_time(epoch: float) -> str:
    """S3's timestamp in listings: 2024-01-02T03:04:05.678Z."""
    millis = int(round(epoch * 1000)) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"


def http_time(epoch: float) -> str:
    """The Last-Modified header: Tue, 02 Jan 2024 03:04:05 GMT."""
    return formatdate(epoch, usegmt=True)


def quoted_etag(etag: str) -> str:
    return f'"{etag}"'


# -- request bodies -------------------------------------------------------------------------------


def parse(body: bytes) -> ET.Element:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise ValidationError(
            "The XML you provided was not well-formed or did not validate against our "
            "published schema.",
            code="MalformedXML",
        ) from None
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def location_constraint(body: bytes) -> str | None:
    if not body.strip():
        return None
    root = parse(body)
    node = root.find("LocationConstraint")
    return node.text.strip() if node is not None and node.text else None


@dataclass(frozen=True)
class CompletedPart:
    part_number: int
    etag: str  # unquoted


def completed_parts(body: bytes) -> list[CompletedPart]:
    root = parse(body)
    parts = []
    for part in root.findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise ValidationError("Each Part needs a PartNumber and an ETag.", code="MalformedXML")
        parts.append(CompletedPart(int(number), etag.strip().strip('"')))
    if not parts:
        raise ValidationError(
            "You must specify at least one part in CompleteMultipartUpload.",
            code="MalformedXML",
        )
    return parts


def delete_request(body: bytes) -> tuple[list[str], bool]:
    """(keys, quiet) from a DeleteObjects body; at most 1000 keys."""
    root = parse(body)
    keys = [obj.findtext("Key") or "" for obj in root.findall("Object")]
    if not keys or len(keys) > 1000:
        raise ValidationError(
            f"A Delete request names 1 to 1000 objects; this one names {len(keys)}.",
            code="MalformedXML",
        )
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    return keys, quiet


def entries(name: str, items: Iterable[Node]) -> list[Node]:
    return [(name, item) for item in items]
