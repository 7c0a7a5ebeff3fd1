"""Running a parsed Logs Insights query over events: pure, given the events in newest-first
order (the order AWS shows unsorted results in).

A record is a dict of field -> value: the system fields (@timestamp in epoch ms, @message,
@logStream, @log, @ingestionTime, @ptr) and, for a JSON event, its members flattened with dots
(`a.b`; a member already starting with @ gets another @). `fields` and `parse` add to it,
`filter` drops it, `stats` turns the records into one row per group, `sort` and `limit` order
and cut whatever rows there are, `display` chooses the columns. Every value leaves as a string
(format_value): @timestamp and bin() values as `YYYY-MM-DD HH:MM:SS.mmm` UTC.

Choices where AWS is silent: a query without `sort` keeps the scan's newest-first order; stats
rows come in ascending order of their `by` values (time order for bin()); without a limit at
most DEFAULT_LIMIT rows return.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tideserve.logs.insights_parse import (
    Binary,
    Call,
    Command,
    Display,
    Field,
    Fields,
    Filter,
    In,
    Like,
    Limit,
    Literal,
    MalformedQueryError,
    Named,
    Parse,
    Sort,
    Stats,
    Unary,
)

DEFAULT_LIMIT = 1000
DEFAULT_COLUMNS = ("@timestamp", "@message", "@logStream", "@log")
MAX_JSON_FIELDS = 100
Record = dict[str, Any]


@dataclass
class QueryOutcome:
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    records_scanned: int = 0
    records_matched: int = 0
    bytes_scanned: int = 0


def json_fields(message: str) -> Record:
    """A JSON object's members flattened with dots, at most MAX_JSON_FIELDS."""
    if not message.startswith("{"):
        return {}
    try:
        doc = json.loads(message)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    out: Record = {}

    def walk(prefix: str, value: Any) -> None:
        if len(out) >= MAX_JSON_FIELDS:
            return
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(f"{prefix}.{index}", inner)
        else:
            out["@" + prefix if prefix.startswith("@") else prefix] = value
    walk("", doc)
    return out


def run(commands: list[Command], records: Iterable[Record], limit: int | None = None,
        cancelled: Callable[[], bool] = lambda: False) -> QueryOutcome:
    outcome = QueryOutcome()
    cap = _limit_of(commands, limit)
    rows: Iterable[Record] = _counted(records, outcome, cancelled)
    projection: list[str] = []
    aggregated = False
    for command in commands:
        if isinstance(command, Fields):
            projection.extend(n.name for n in command.items if n.name not in projection)
            rows = _with_fields(rows, command.items)
        elif isinstance(command, Display):
            projection = list(command.names)
        elif isinstance(command, Filter):
            rows = _filtered(rows, command.expr)
        elif isinstance(command, Parse):
            rows = _parsed(rows, command)
        elif isinstance(command, Stats):
            rows = _stats(list(_matched(rows, outcome)), command)
            projection = [n.name for n in (*command.by, *command.aggregates)]
            aggregated = True
        elif isinstance(command, Sort):
            if not (not aggregated and command.keys == ((Field("@timestamp"), True),)):
                rows = sorted(rows, key=_sort_key(command))
            # else: the scan is newest first already, so `| limit` stops it early
        elif isinstance(command, Limit):
            rows = _first(rows, command.count)
    if not aggregated:
        rows = _matched(rows, outcome)
    columns = projection or list(DEFAULT_COLUMNS)
    for row in _first(rows, cap):
        cells = [(name, format_value(row.get(name), name)) for name in columns
                 if row.get(name) is not None]
        if not aggregated and "@ptr" in row:
            cells.append(("@ptr", str(row["@ptr"])))
        outcome.rows.append(cells)
    return outcome


def required_substrings(commands: list[Command]) -> tuple[str, ...]:
    """Literal text every matching @message must contain, from `filter @message like ...`
    commands at the head of the query (before anything that sets fields): the store uses it
    as an SQL prefilter, as FilterLogEvents does with plain terms. Case-insensitive and real
    regular expressions give nothing."""
    found: list[str] = []
    for command in commands:
        if isinstance(command, Fields) and all(
                i.name != "@message" or i.expr == Field("@message") for i in command.items):
            continue
        if isinstance(command, Display):
            continue
        if not isinstance(command, Filter):
            break
        found.extend(_literal_likes(command.expr))
    return tuple(found)


def _literal_likes(expr: Any) -> list[str]:
    if isinstance(expr, Binary) and expr.op == "and":
        return _literal_likes(expr.left) + _literal_likes(expr.right)
    if not (isinstance(expr, Like) and not expr.negate and expr.operand == Field("@message")):
        return []
    if expr.pattern.flags & re.IGNORECASE:
        return []
    literal = _literal(expr.pattern.pattern)
    return [literal] if literal else []


def _literal(pattern: str) -> str | None:
    """The text a regex matches when it is plain text (escapes allowed), else None."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1].isalnum():
                return None  # \d, \b, ...: a class or an anchor, not text
            out.append(pattern[i + 1])
            i += 2
            continue
        if char in ".^$*+?{}[]|()":
            return None
        out.append(char)
        i += 1
    return "".join(out) or None


def _limit_of(commands: list[Command], limit: int | None) -> int:
    limits = [c.count for c in commands if isinstance(c, Limit)]
    return min([*limits, limit or DEFAULT_LIMIT]) if limits else (limit or DEFAULT_LIMIT)


def _counted(records: Iterable[Record], outcome: QueryOutcome,
             cancelled: Callable[[], bool]) -> Iterator[Record]:
    for record in records:
        if cancelled():
            return
        outcome.records_scanned += 1
        outcome.bytes_scanned += len(str(record.get("@message", "")))
        yield record


def _matched(rows: Iterable[Record], outcome: QueryOutcome) -> Iterator[Record]:
    for row in rows:
        outcome.records_matched += 1
        yield row


def _first(rows: Iterable[Record], count: int) -> Iterator[Record]:
    for i, row in enumerate(rows):
        if i >= count:
            return
        yield row


def _filtered(rows: Iterable[Record], expr: Any) -> Iterator[Record]:
    return (row for row in rows if truthy(evaluate(expr, row)))


def _with_fields(rows: Iterable[Record], items: tuple[Named, ...]) -> Iterator[Record]:
    for row in rows:
        for item in items:
            if not (isinstance(item.expr, Field) and item.expr.name == item.name):
                row[item.name] = evaluate(item.expr, row)
        yield row


def _parsed(rows: Iterable[Record], command: Parse) -> Iterator[Record]:
    for row in rows:
        source = row.get(command.source)
        m = command.pattern.search(source) if isinstance(source, str) else None
        if m is not None:
            for name, group in zip(command.names, command.groups, strict=True):
                row[name] = m.group(group)
        yield row


# --- expressions -------------------------------------------------------------------------

def evaluate(expr: Any, row: Record) -> Any:
    if isinstance(expr, Field):
        return row.get(expr.name)
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Binary):
        return _binary(expr, row)
    if isinstance(expr, Unary):
        value = evaluate(expr.operand, row)
        if expr.op == "not":
            return not truthy(value)
        number = as_number(value)
        return None if number is None else -number
    if isinstance(expr, Like):
        text = evaluate(expr.operand, row)
        found = text is not None and expr.pattern.search(_text(text)) is not None
        return found != expr.negate
    if isinstance(expr, In):
        value = evaluate(expr.operand, row)
        inside = any(_equal(value, evaluate(v, row)) for v in expr.values)
        return inside != expr.negate
    if isinstance(expr, Call):
        return _call(expr, row)
    raise MalformedQueryError(f"cannot evaluate {expr!r}")


def _binary(expr: Binary, row: Record) -> Any:
    if expr.op == "and":
        return truthy(evaluate(expr.left, row)) and truthy(evaluate(expr.right, row))
    if expr.op == "or":
        return truthy(evaluate(expr.left, row)) or truthy(evaluate(expr.right, row))
    left, right = evaluate(expr.left, row), evaluate(expr.right, row)
    if expr.op == "=":
        return _equal(left, right)
    if expr.op == "!=":
        return left is not None and not _equal(left, right)
    if expr.op in ("<", "<=", ">", ">="):
        return _order(expr.op, left, right)
    a, b = as_number(left), as_number(right)
    if a is None or b is None:
        return None
    if expr.op == "+":
        return a + b
    if expr.op == "-":
        return a - b
    if expr.op == "*":
        return a * b
    if b == 0:
        return None
    return a / b if expr.op == "/" else a % b


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        return a == b
    return _text(left) == _text(right)


def _order(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    a, b = as_number(left), as_number(right)
    pair: tuple[Any, Any] = (a, b) if a is not None and b is not None else (_text(left),
                                                                            _text(right))
    outcome: bool = {"<": pair[0] < pair[1], "<=": pair[0] <= pair[1],
                     ">": pair[0] > pair[1], ">=": pair[0] >= pair[1]}[op]
    return outcome


def _call(expr: Call, row: Record) -> Any:
    name = expr.name
    if name == "bin":
        period = _duration(expr.args)
        stamp = row.get("@timestamp")
        return None if stamp is None else _Time(int(stamp) // period * period)
    args = [evaluate(a, row) for a in expr.args]
    simple = _FUNCTIONS.get(name)
    if simple is None:
        raise MalformedQueryError(f"unknown function {name}")
    return simple(*args)


def _duration(args: tuple[Any, ...]) -> int:
    if len(args) != 1 or not isinstance(args[0], Literal) or not (
            isinstance(args[0].value, tuple) and args[0].value[0] == "duration"):
        raise MalformedQueryError("bin() takes a period such as 5m, 30s, 1h or 1d")
    period: int = args[0].value[1]
    if period <= 0:
        raise MalformedQueryError("bin() needs a positive period")
    return period


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ispresent": lambda v: v is not None,
    "isempty": lambda v: v is None or _text(v) == "",
    "isblank": lambda v: v is None or _text(v).strip() == "",
    "strcontains": lambda s, sub: s is not None and sub is not None and _text(sub) in _text(s),
    "tolower": lambda s: None if s is None else _text(s).lower(),
    "toupper": lambda s: None if s is None else _text(s).upper(),
    "strlen": lambda s: None if s is None else len(_text(s)),
    "trim": lambda s: None if s is None else _text(s).strip(),
    "concat": lambda *parts: "".join(_text(p) for p in parts if p is not None),
    "coalesce": lambda *values: next((v for v in values if v is not None), None),
    "abs": lambda v: None if as_number(v) is None else abs(as_number(v) or 0),
    "ceil": lambda v: None if as_number(v) is None else math.ceil(as_number(v) or 0),
    "floor": lambda v: None if as_number(v) is None else math.floor(as_number(v) or 0),
}


def truthy(value: Any) -> bool:
    return bool(value) and value is not None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, _Time):
        return float(value.ms)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return format_value(value, "")


@dataclass(frozen=True, order=True)
class _Time:
    """A time value (bin() results): shown as a timestamp, compared as epoch ms."""

    ms: int


def format_value(value: Any, name: str) -> str:
    if isinstance(value, _Time) or (name in ("@timestamp", "@ingestionTime")
                                    and isinstance(value, int)):
        ms = value.ms if isinstance(value, _Time) else value
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# --- stats -------------------------------------------------------------------------------

def _stats(records: list[Record], command: Stats) -> list[Record]:
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for record in records:
        key = tuple(evaluate(b.expr, record) for b in command.by)
        groups.setdefault(key, []).append(record)
    if not command.by and not groups:
        groups[()] = []
    rows = []
    for key in sorted(groups, key=_group_order):
        row: Record = {b.name: v for b, v in zip(command.by, key, strict=True)}
        for v in key:
            if isinstance(v, _Time):  # `sort @timestamp` after `by bin(...)` sorts the bins
                row.setdefault("@timestamp", v.ms)
        for aggregate in command.aggregates:
            row[aggregate.name] = _aggregate(aggregate.expr, groups[key])
        rows.append(row)
    return rows


def _group_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((0, as_number(v), "") if as_number(v) is not None else (1, 0.0, _text(v))
                 for v in key)


def _aggregate(call: Call, records: list[Record]) -> Any:
    if call.name == "count" and (not call.args or call.args == (Literal("*"),)):
        return len(records)
    if not call.args:
        raise MalformedQueryError(f"{call.name}() needs a field")
    values = [v for v in (evaluate(call.args[0], r) for r in records) if v is not None]
    if call.name == "count":
        return len(values)
    if call.name == "count_distinct":
        return len({_text(v) for v in values})
    if call.name in ("earliest", "latest"):
        stamped = [(r.get("@timestamp", 0), evaluate(call.args[0], r)) for r in records]
        stamped = [s for s in stamped if s[1] is not None]
        if not stamped:
            return None
        return (min if call.name == "earliest" else max)(stamped, key=lambda s: s[0])[1]
    numbers = [n for n in (as_number(v) for v in values) if n is not None]
    if not numbers:
        return None
    if call.name == "sum":
        return sum(numbers)
    if call.name == "avg":
        return sum(numbers) / len(numbers)
    if call.name == "min":
        return min(numbers)
    if call.name == "max":
        return max(numbers)
    if call.name == "stddev":
        return statistics.pstdev(numbers) if len(numbers) > 1 else 0.0
    if call.name == "pct":
        if len(call.args) != 2 or not isinstance(call.args[1], Literal):
            raise MalformedQueryError("pct(field, percentile) needs a number percentile")
        rank = float(call.args[1].value) / 100 * (len(numbers) - 1)
        ordered = sorted(numbers)
        return ordered[round(rank)]
    raise MalformedQueryError(f"unknown aggregate {call.name}")


def _sort_key(command: Sort) -> Callable[[Record], tuple[Any, ...]]:
    def key(row: Record) -> tuple[Any, ...]:
        parts: list[Any] = []
        for expr, descending in command.keys:
            value = evaluate(expr, row)
            number = as_number(value)
            if value is None:
                parts.append((1, 0.0, ""))  # missing values last either way
            elif number is not None:
                parts.append((0, -number if descending else number, ""))
            else:
                parts.append((0, 0.0, _Reversed(_text(value)) if descending else _text(value)))
        return tuple(parts)
    return key


@dataclass(frozen=True)
class _Reversed:
    text: str

    def __lt__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.text > other.text


def record_of(event_id: int, stream: str, group: str, account: str, timestamp: int,
              ingestion_time: int, message: str) -> Record:
    record: Record = json_fields(message)
    record.update({
        "@timestamp": timestamp, "@message": message, "@logStream": stream,
        "@log": f"{account}:{group}", "@ingestionTime": ingestion_time, "@ptr": event_id,
    })
    return record

