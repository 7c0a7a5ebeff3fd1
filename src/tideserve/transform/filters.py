"""DataProcessing: the JSONPath subset AWS documents for InputFilter and OutputFilter, and
JoinSource=Input (spec §3.5).

    $                 the whole record (required root)
    .name  ['a','b']  an attribute; several, kept as an object ({"a": .., "b": ..})
    *  [*]            every element or attribute value
    [i]  [i,j]        elements by index; negative from the end (-1 is the last)
    [s:e] [:e] [s:]   a slice

CSV records are lists of fields and take the index forms only: `$[0,2]` keeps fields 1 and 3,
`$[1:]` drops the first. An index outside the record is an error (the object fails, as on AWS).

Joins: a CSV output row is appended to its input row (`1,2,3` + `0.9` -> `1,2,3,0.9`); a JSON
object input gains `SageMakerOutput`; any other JSON input becomes
`{"SageMakerInput": <in>, "SageMakerOutput": <out>}`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[^.\[\]'\s]+")
_INDEX = re.compile(r"^-?\d+$")
_SLICE = re.compile(r"^(-?\d+)?:(-?\d+)?$")
_QUOTED = re.compile(r"^'([^']*)'$")


class FilterError(Exception):
    """A record that the filter or the join cannot be applied to."""


@dataclass(frozen=True)
class Step:
    kind: str  # field | names | indexes | slice | wildcard
    names: tuple[str, ...] = ()
    indexes: tuple[int, ...] = ()
    start: int | None = None
    stop: int | None = None


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not text.startswith("$"):
            raise ValueError("it must start with the root '$'")
        steps: list[Step] = []
        rest = text[1:]
        while rest:
            step, rest = _next_step(rest)
            steps.append(step)
        return cls(text, tuple(steps))

    @property
    def index_only(self) -> bool:
        return all(s.kind in ("indexes", "slice") for s in self.steps) and len(self.steps) <= 1

    def apply(self, value: Any) -> Any:
        return _apply(value, self.steps)


def _next_step(rest: str) -> tuple[Step, str]:
    if rest.startswith(".["):
        rest = rest[1:]
    if rest.startswith(".*"):
        return Step("wildcard"), rest[2:]
    if rest.startswith("."):
        match = _NAME.match(rest, 1)
        if match is None:
            raise ValueError(f"expected a name after '.' at '{rest}'")
        return Step("field", names=(match.group(),)), rest[match.end():]
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' at '{rest}'")
        return _bracket(rest[1:end].strip()), rest[end + 1:]
    raise ValueError(f"unexpected '{rest}'")


def _bracket(inner: str) -> Step:
    if inner == "*":
        return Step("wildcard")
    slice_match = _SLICE.match(inner)
    if slice_match:
        start, stop = slice_match.groups()
        return Step("slice", start=None if start is None else int(start),
                    stop=None if stop is None else int(stop))
    parts = [p.strip() for p in inner.split(",")]
    if parts and all(_INDEX.match(p) for p in parts):
        return Step("indexes", indexes=tuple(int(p) for p in parts))
    names = []
    for part in parts:
        quoted = _QUOTED.match(part)
        if quoted is None:
            raise ValueError(f"'{part}' is neither an index nor a quoted name")
        if "." in quoted.group(1):
            raise ValueError(f"nested paths are not allowed inside brackets ('{part}')")
        names.append(quoted.group(1))
    return Step("field" if len(names) == 1 else "names", names=tuple(names))


def _apply(value: Any, steps: tuple[Step, ...]) -> Any:
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if step.kind == "field":
        return _apply(_member(value, step.names[0]), rest)
    if step.kind == "names":
        return {n: _apply(_member(value, n), rest) for n in step.names}
    if step.kind == "wildcard":
        items = list(value.values()) if isinstance(value, dict) else _list(value)
        return [_apply(v, rest) for v in items]
    items = _list(value)
    if step.kind == "slice":
        return [_apply(v, rest) for v in items[step.start:step.stop]]
    picked = [_apply(_element(items, i), rest) for i in step.indexes]
    return picked[0] if len(picked) == 1 else picked


def _member(value: Any, name: str) -> Any:
    if not isinstance(value, dict) or name not in value:
        raise FilterError(f"the record has no attribute '{name}'")
    return value[name]


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise FilterError(f"an index applies to an array, not to {type(value).__name__}")
    return value


def _element(items: list[Any], index: int) -> Any:
    if not -len(items) <= index < len(items):
        raise FilterError(f"index {index} is outside the record of {len(items)} fields")
    return items[index]


# -- records as CSV rows or JSON values --------------------------------------------------------


def is_csv(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "text/csv"


def csv_fields(line: bytes) -> list[str]:
    text = line.decode("utf-8").rstrip("\r")
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]), [])


def csv_line(fields: list[Any]) -> bytes:
    if not any(isinstance(f, str) and any(c in f for c in ',"\n\r') for f in fields):
        return ",".join(str(f) for f in fields).encode()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue().encode()


def filter_csv(path: JsonPath, line: bytes) -> bytes:
    selected = path.apply(csv_fields(line))
    return csv_line(selected if isinstance(selected, list) else [selected])


def filter_json(path: JsonPath, line: bytes) -> bytes:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FilterError(f"the record is not JSON: {exc}") from None
    return json.dumps(path.apply(value), separators=(",", ":")).encode()


def apply_filter(path: JsonPath, line: bytes, content_type: str | None) -> bytes:
    return filter_csv(path, line) if is_csv(content_type) else filter_json(path, line)


def join(record: bytes, output: bytes, content_type: str | None) -> bytes:
    """The input record with its output, as JoinSource=Input joins them."""
    if is_csv(content_type):
        return record.rstrip(b"\r") + b"," + output.rstrip(b"\r")
    try:
        source = json.loads(record)
        result = json.loads(output)
    except json.JSONDecodeError as exc:
        raise FilterError(f"a JSON join needs JSON input and output: {exc}") from None
    if isinstance(source, dict):
        joined = {**source, "SageMakerOutput": result}
    else:
        joined = {"SageMakerInput": source, "SageMakerOutput": result}
    return json.dumps(joined, separators=(",", ":")).encode()
