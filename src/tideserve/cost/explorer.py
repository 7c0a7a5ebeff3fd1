"""Cost Explorer's GetCostAndUsage over the metering ledger, as a service-layer handler: input
as botocore's `ce` model names its members, output in its GetCostAndUsageResponse shape.

Everything metered here is SageMaker hosting, so the five cost metrics (Unblended, Blended,
Amortized, NetUnblended, NetAmortized) are equal: no credits, refunds, upfront fees or
blended organisation rates exist. UsageQuantity is instance-hours (Unit "Hrs");
NormalizedUsageAmount weighs them by AWS's size factors (large 4, xlarge 8, 2xlarge 16, ...).
As AWS does, a grouped answer leaves each period's Total empty and puts amounts in Groups.
Everything is answered in one page; nothing is delayed, and a period that has not ended yet
is Estimated. Tags are the endpoints' tags at query time (see attribution.py). Unlike AWS,
HOURLY is not limited to the last 14 days: a query may span up to MAX_PERIODS periods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from tideserve.clock import Clock
from tideserve.cost import ce_filter
from tideserve.cost.attribution import DIMENSIONS, Attributor, Facts, TagsFor
from tideserve.cost.billing import GRANULARITIES, SECONDS_PER_HOUR, Interval, periods
from tideserve.cost.ledger import Ledger, Usage
from tideserve.cost.report import split
from tideserve.errors import ValidationError

COST_METRICS: Final = (
    "AmortizedCost", "BlendedCost", "NetAmortizedCost", "NetUnblendedCost", "UnblendedCost",
)
USAGE_METRICS: Final = ("NormalizedUsageAmount", "UsageQuantity")
MAX_GROUP_BY: Final = 2
MAX_PERIODS: Final = 10_000  # one query's periods: a year of hours fits
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2}Z)?")
_SIZES: Final = {"nano": 0.25, "micro": 0.5, "small": 1, "medium": 2, "large": 4, "xlarge": 8}

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class GroupDefinition:
    type: str  # "DIMENSION" | "TAG"
    key: str


@dataclass(frozen=True)
class CostQuery:
    window: Interval
    granularity: str
    with_time: bool  # periods written as YYYY-MM-DDThh:mm:ssZ rather than YYYY-MM-DD
    metrics: tuple[str, ...]
    group_by: tuple[GroupDefinition, ...]
    filter: ce_filter.Expression | None


@dataclass
class _Sums:
    cost: float = 0.0  # USD
    seconds: float = 0.0  # instance-seconds
    normalized_seconds: float = 0.0  # instance-seconds x size factor


class CostExplorer:
    def __init__(self, ledger: Ledger, tags_for: TagsFor, clock: Clock | None = None) -> None:
        self.ledger = ledger
        self.tags_for = tags_for
        self.clock = clock or ledger.clock

    def operations(self) -> dict[str, Handler]:
        """Operation name -> handler, registered under the signing name 'ce'."""
        return {"GetCostAndUsage": self.get_cost_and_usage}

    def get_cost_and_usage(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = parse_query(params)
        windows = periods(query.window, query.granularity)
        attributor = Attributor(self.tags_for)
        sums: list[dict[tuple[str, ...], _Sums]] = [{} for _ in windows]
        usages = self.ledger.usage(query.window.start, query.window.end)
        for piece in split(usages, windows, self.clock.now()):
            facts = attributor.facts(piece.usage)
            if query.filter is not None and not ce_filter.matches(query.filter, facts):
                continue
            keys = tuple(_group_key(g, facts) for g in query.group_by)
            acc = sums[piece.period].setdefault(keys, _Sums())
            acc.cost += piece.cost_usd
            acc.seconds += piece.seconds
            acc.normalized_seconds += piece.seconds * normalization_factor(piece.usage)
        now = self.clock.now()
        results = [
            _result(query, window, by_keys, window.end > now)
            for window, by_keys in zip(windows, sums, strict=True)
        ]
        out: dict[str, Any] = {"ResultsByTime": results, "DimensionValueAttributes": []}
        if query.group_by:
            out["GroupDefinitions"] = [{"Type": g.type, "Key": g.key} for g in query.group_by]
        return out


def normalization_factor(u: Usage) -> float:
    """AWS's normalized units by size: ml.m5.large 4, ml.m5.xlarge 8, ml.m5.12xlarge 96."""
    size = u.instance_type.rsplit(".", 1)[-1]
    if size in _SIZES:
        return float(_SIZES[size])
    if size.endswith("xlarge") and size[:-6].isdigit():
        return 8.0 * int(size[:-6])
    return 1.0


def _group_key(group: GroupDefinition, facts: Facts) -> str:
    if group.type == "TAG":
        return f"{group.key}${facts.tags.get(group.key, '')}"
    return facts.dimensions[group.key]


def _result(
    query: CostQuery, window: Interval, by_keys: Mapping[tuple[str, ...], _Sums], open_: bool
) -> dict[str, Any]:
    period = {"Start": _format(window.start, query), "End": _format(window.end, query)}
    if not query.group_by:
        total = _Sums()
        for s in by_keys.values():
            total.cost += s.cost
            total.seconds += s.seconds
            total.normalized_seconds += s.normalized_seconds
        return {"TimePeriod": period, "Total": _metrics(query.metrics, total), "Groups": [],
                "Estimated": open_}
    groups = [
        {"Keys": list(keys), "Metrics": _metrics(query.metrics, s)}
        for keys, s in sorted(by_keys.items())
    ]
    return {"TimePeriod": period, "Total": {}, "Groups": groups, "Estimated": open_}


def _metrics(names: Sequence[str], s: _Sums) -> dict[str, dict[str, str]]:
    out = {}
    for name in names:
        if name in COST_METRICS:
            out[name] = {"Amount": amount(s.cost), "Unit": "USD"}
        elif name == "UsageQuantity":
            out[name] = {"Amount": amount(s.seconds / SECONDS_PER_HOUR), "Unit": "Hrs"}
        else:
            out[name] = {"Amount": amount(s.normalized_seconds / SECONDS_PER_HOUR), "Unit": "N/A"}
    return out


def amount(value: float) -> str:
    """Cost Explorer's decimal string: up to 10 places, no trailing zeros ("0.0191666667")."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _format(t: float, query: CostQuery) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if query.with_time else "%Y-%m-%d")


# -- validation at the edge ----------------------------------------------------------------


def parse_query(params: Mapping[str, Any]) -> CostQuery:
    if params.get("NextPageToken"):
        raise ValidationError(
            "The NextPageToken is not valid: tideserve answers in one page.",
            code="InvalidNextTokenException",
        )
    granularity = params.get("Granularity")
    if granularity not in GRANULARITIES:
        raise ValidationError(
            f"Value '{granularity}' at 'granularity' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(GRANULARITIES)}]"
        )
    window, with_time = _time_period(params.get("TimePeriod"))
    filter_ = params.get("Filter")
    query = CostQuery(
        window=window,
        granularity=granularity,
        with_time=with_time or granularity == "HOURLY",
        metrics=_metric_names(params.get("Metrics")),
        group_by=_group_by(params.get("GroupBy") or []),
        filter=None if filter_ is None else ce_filter.parse(filter_),
    )
    if len(periods(window, granularity)) > MAX_PERIODS:
        raise ValidationError(
            f"The TimePeriod spans more than {MAX_PERIODS} {granularity} periods; "
            "ask for a shorter period or a coarser granularity."
        )
    return query


def _time_period(value: Any) -> tuple[Interval, bool]:
    if not isinstance(value, Mapping) or "Start" not in value or "End" not in value:
        raise ValidationError("TimePeriod with Start and End is required.")
    start, start_time = _timestamp(value["Start"], "Start")
    end, end_time = _timestamp(value["End"], "End")
    if end <= start:
        raise ValidationError("Start date (and hour) should be before end date (and hour)")
    return Interval(start, end), start_time or end_time


def _timestamp(text: Any, member: str) -> tuple[float, bool]:
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise ValueError(text)
        fmt = "%Y-%m-%dT%H:%M:%SZ" if match.group(2) else "%Y-%m-%d"
        moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError(
            f"Value '{text}' at 'timePeriod.{member.lower()}' failed to satisfy constraint: "
            "Member must be a date YYYY-MM-DD or a time YYYY-MM-DDThh:mm:ssZ"
        ) from None
    return moment.timestamp(), match.group(2) is not None


def _metric_names(value: Any) -> tuple[str, ...]:
    if not value:
        raise ValidationError("Metrics is required: name at least one metric.")
    allowed = (*COST_METRICS, *USAGE_METRICS)
    unknown = [m for m in value if m not in allowed]
    if unknown:
        raise ValidationError(
            f"Invalid metrics: {', '.join(map(str, unknown))}; "
            f"valid metrics are {', '.join(allowed)}."
        )
    return tuple(dict.fromkeys(value))


def _group_by(value: Sequence[Any]) -> tuple[GroupDefinition, ...]:
    if len(value) > MAX_GROUP_BY:
        raise ValidationError(
            f"GroupBy has {len(value)} definitions; you can group by at most {MAX_GROUP_BY}."
        )
    out = []
    for i, item in enumerate(value):
        kind, key = (item.get("Type"), item.get("Key")) if isinstance(item, Mapping) else (0, 0)
        if kind == "TAG" and isinstance(key, str) and key:
            out.append(GroupDefinition("TAG", key))
        elif kind == "DIMENSION" and key in DIMENSIONS:
            out.append(GroupDefinition("DIMENSION", key))
        else:
            raise ValidationError(
                f"GroupBy[{i}] {{Type: {kind}, Key: {key}}} is not supported: group by "
                f"Type TAG with a tag key, or Type DIMENSION with one of {', '.join(DIMENSIONS)}."
            )
    if len(set(out)) != len(out):
        raise ValidationError("GroupBy names the same group twice.")
    return tuple(out)
