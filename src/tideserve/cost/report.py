"""Cost reports: the ledger's instance lifetimes cut at UTC period boundaries, grouped by
endpoint, variant, instance type, purchase option or tag, with invocations beside them for
cost per inference. `tideserve costs` and Cost Explorer answer the same question from here.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tideserve.cost.attribution import Attributor, Facts, TagsFor
from tideserve.cost.billing import Interval, billed_seconds, cost_of, periods
from tideserve.cost.ledger import Ledger, Usage
from tideserve.errors import ValidationError

# (endpoint name, variant name, start, end) -> invocations in [start, end)
Invocations = Callable[[str, str, float, float], float]
KeyOf = Callable[[Usage, Facts], str]

_KEYS: dict[str, KeyOf] = {
    "endpoint": lambda u, f: u.endpoint_name,
    "variant": lambda u, f: u.variant,
    "instance_type": lambda u, f: u.instance_type,
    "purchase_option": lambda u, f: u.purchase_option,
}
GROUP_KEYS = (*_KEYS, "tag:<key>")


@dataclass(frozen=True)
class Piece:
    """The part of one instance lifetime inside one period."""

    period: int  # index into the report's periods
    usage: Usage
    seconds: float  # billed instance-seconds
    cost_usd: float


@dataclass(frozen=True)
class CostRow:
    period_start: float  # epoch seconds, UTC boundary (or the report's start)
    period_end: float
    keys: tuple[str, ...]  # one value per group_by entry; "" for an absent tag
    instance_seconds: float
    cost_usd: float
    invocations: float
    cost_per_inference: float | None  # USD; None without invocations


@dataclass
class _Group:
    seconds: float = 0.0
    cost: float = 0.0
    by_variant: dict[tuple[str, str], float] = field(default_factory=dict)  # -> seconds


def split(usages: Iterable[Usage], windows: Sequence[Interval], now: float) -> Iterator[Piece]:
    """Each lifetime's billed seconds per window (windows sorted and disjoint); a running
    instance counts up to `now`."""
    starts = [w.start for w in windows]
    for u in usages:
        life = u.interval(now)
        i = max(0, bisect_right(starts, math.floor(life.start)) - 1)
        while i < len(windows) and windows[i].start < math.ceil(life.end):
            seconds = billed_seconds(life, windows[i])
            if seconds > 0:
                yield Piece(i, u, seconds, cost_of(life, u.rate_per_hour, windows[i]))
            i += 1


def key_function(spec: str) -> KeyOf:
    """'endpoint', 'variant', 'instance_type', 'purchase_option' or 'tag:<key>'."""
    if spec.startswith("tag:") and len(spec) > 4:
        tag = spec[4:]
        return lambda u, f: f.tags.get(tag, "")
    try:
        return _KEYS[spec]
    except KeyError:
        raise ValidationError(
            f"Cannot group a cost report by '{spec}': use one of {', '.join(GROUP_KEYS)}."
        ) from None


def cost_report(
    ledger: Ledger,
    tags_for: TagsFor,
    invocations: Invocations,
    start: float,
    end: float,
    granularity: str = "DAILY",
    group_by: Sequence[str] = ("endpoint", "variant"),
) -> list[CostRow]:
    """Cost of [start, end) per UTC period and group, sorted by period then keys.

    Invocations of a variant in a period are shared among the groups it falls in by their
    instance-seconds (a variant splits only when grouped by instance type or purchase option,
    e.g. during a blue/green update), so the groups' invocations add up to the variant's."""
    if end <= start:
        raise ValidationError(f"The report's end ({end}) must be after its start ({start}).")
    windows = periods(Interval(start, end), granularity)
    keys = [key_function(spec) for spec in group_by]
    attributor = Attributor(tags_for)
    groups: dict[tuple[int, tuple[str, ...]], _Group] = {}
    variant_seconds: dict[tuple[int, tuple[str, str]], float] = {}
    for piece in split(ledger.usage(start, end), windows, ledger.clock.now()):
        facts = attributor.facts(piece.usage)
        group = groups.setdefault(
            (piece.period, tuple(k(piece.usage, facts) for k in keys)), _Group()
        )
        variant = (piece.usage.endpoint_name, piece.usage.variant)
        group.seconds += piece.seconds
        group.cost += piece.cost_usd
        group.by_variant[variant] = group.by_variant.get(variant, 0.0) + piece.seconds
        slot = (piece.period, variant)
        variant_seconds[slot] = variant_seconds.get(slot, 0.0) + piece.seconds
    counted: dict[tuple[int, tuple[str, str]], float] = {}

    def invoked(index: int, variant: tuple[str, str]) -> float:
        if (index, variant) not in counted:
            w = windows[index]
            counted[(index, variant)] = invocations(variant[0], variant[1], w.start, w.end)
        return counted[(index, variant)]

    rows = []
    for (index, group_keys), g in sorted(groups.items()):
        calls = sum(
            invoked(index, v) * seconds / variant_seconds[(index, v)]
            for v, seconds in g.by_variant.items()
        )
        rows.append(CostRow(
            windows[index].start, windows[index].end, group_keys, g.seconds, g.cost, calls,
            g.cost / calls if calls > 0 else None,
        ))
    return rows


def no_invocations(endpoint: str, variant: str, start: float, end: float) -> float:
    """An Invocations source for reports that need no cost per inference."""
    return 0.0
