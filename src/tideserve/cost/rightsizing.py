"""Endpoint rightsizing, pure: from a variant's utilisation over a look-back to the cheapest
catalog instance type that keeps it under a stated headroom (spec §13.2-§13.3, base §6.8).

Utilisation is normalised per instance: SageMaker's CPUUtilization runs to vCPU x 100 %, so
`cpu = CPUUtilization / vCPU` (0..100); MemoryUtilization and GPUUtilization are already
shares of the instance's memory and GPUs. Moving to a candidate type scales each share by the
ratio of capacities: projected CPU = cpu x vCPU_cur / vCPU_cand, and so on.

The rule (HEADROOM below), stated once:
    a type fits  iff  projected p95 CPU <= 60 %  and  projected max memory <= 85 %
                      and (if the variant uses GPUs) projected p95 GPU <= 60 %
CPU and GPU are judged at p95 (a short burst above 60 % only slows requests down) and memory at
its maximum (running out of memory kills the model server). The recommendation is the
cheapest fitting type of the same family (RecommendationTarget SAME_INSTANCE_FAMILY, the CE
default) or of any family (CROSS_INSTANCE_FAMILY); cheaper than now -> MODIFY, CPU/MEMORY
_OVER_PROVISIONED; the current type failing the rule -> MODIFY to a larger type,
*_UNDER_PROVISIONED (negative savings); no invocations over the whole look-back while
instances were billed -> TERMINATE (an idle, "zombie" endpoint, spec §13.3).

Worked example (the seed's): ml.m5.4xlarge (16 vCPU, 64 GiB, $0.922/h) at 5 % CPU and 10 %
memory. ml.m5.large (2 vCPU, 8 GiB, $0.115/h): CPU 5 x 16/2 = 40 % <= 60, memory
10 x 64/8 = 80 % <= 85 -> fits and is the family's cheapest, so the advice is ml.m5.large at
0.115/0.922 = 12.5 % of the cost: -87.5 %, $673.06 - $83.95 = $589.11 a month (730 h).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tideserve.cost.catalog import Catalog, InstanceType

HOURS_PER_MONTH: Final = 730.0  # AWS's convention for monthly estimates


@dataclass(frozen=True)
class Headroom:
    """Largest projected utilisation (percent) a candidate type may run at."""

    cpu_p95: float = 60.0
    memory_max: float = 85.0
    gpu_p95: float = 60.0


HEADROOM: Final = Headroom()
SAME_FAMILY: Final = "SAME_INSTANCE_FAMILY"
CROSS_FAMILY: Final = "CROSS_INSTANCE_FAMILY"


@dataclass(frozen=True)
class VariantUtilisation:
    """One variant's evidence over the look-back. Percentages are per instance, 0..100
    (CPU already divided by the type's vCPUs); None where no datapoint was published."""

    endpoint: str
    variant: str
    instance_type: str
    instance_count: int
    cpu_p95: float | None
    cpu_max: float | None
    memory_max: float | None
    gpu_p95: float | None
    invocations: float  # Σ Invocations over the look-back
    running_hours: float  # instance-hours billed in the look-back


@dataclass(frozen=True)
class Target:
    instance_type: str
    monthly_cost: float  # USD, all instances, 730 h
    monthly_savings: float  # USD; negative when the variant needs a larger type
    cpu_p95: float | None  # projected, percent
    memory_max: float | None
    gpu_p95: float | None


@dataclass(frozen=True)
class Recommendation:
    utilisation: VariantUtilisation
    kind: str  # "MODIFY" | "TERMINATE"
    monthly_cost: float  # USD now, all instances, 730 h
    target: Target | None  # None for TERMINATE
    reasons: tuple[str, ...]  # Cost Explorer FindingReasonCodes
    why: str  # one sentence a user reads

    @property
    def monthly_savings(self) -> float:
        return self.monthly_cost if self.target is None else self.target.monthly_savings

    @property
    def savings_percentage(self) -> float:
        return 100.0 * self.monthly_savings / self.monthly_cost if self.monthly_cost else 0.0


def monthly_cost(t: InstanceType, count: int) -> float:
    return t.on_demand_hourly_usd * count * HOURS_PER_MONTH


def _scaled(value: float | None, current: float, candidate: float) -> float | None:
    if value is None:
        return None
    if candidate <= 0:
        return float("inf") if value > 0 else 0.0
    return value * current / candidate


def project(u: VariantUtilisation, cur: InstanceType, cand: InstanceType) -> Target:
    cost = monthly_cost(cand, u.instance_count)
    return Target(
        instance_type=cand.name,
        monthly_cost=cost,
        monthly_savings=monthly_cost(cur, u.instance_count) - cost,
        cpu_p95=_scaled(u.cpu_p95, cur.vcpu, cand.vcpu),
        memory_max=_scaled(u.memory_max, cur.memory_gib, cand.memory_gib),
        gpu_p95=_scaled(u.gpu_p95, cur.gpu_count, cand.gpu_count),
    )


def fits(t: Target, headroom: Headroom = HEADROOM) -> bool:
    return ((t.cpu_p95 is None or t.cpu_p95 <= headroom.cpu_p95)
            and (t.memory_max is None or t.memory_max <= headroom.memory_max)
            and (t.gpu_p95 is None or t.gpu_p95 <= headroom.gpu_p95))


def family(name: str) -> str:
    """ml.m5.4xlarge -> ml.m5"""
    return ".".join(name.split(".")[:2])


def recommend(u: VariantUtilisation, catalog: Catalog, target: str = SAME_FAMILY,
              headroom: Headroom = HEADROOM) -> Recommendation | None:
    """The advice for one variant, or None when its type is already the cheapest that fits
    (or it has no utilisation data to judge by)."""
    cur = catalog.get(u.instance_type)
    now = monthly_cost(cur, u.instance_count)
    if u.running_hours > 0 and u.invocations == 0:
        return Recommendation(u, "TERMINATE", now, None, (),
                              f"no invocations over the look-back while {u.running_hours:.2f} "
                              "instance-hours were billed: an idle endpoint")
    if u.cpu_p95 is None and u.memory_max is None:
        return None
    current = project(u, cur, cur)
    candidates = [project(u, cur, catalog.get(n)) for n in _candidates(catalog, cur, target)]
    fitting = sorted((c for c in candidates if fits(c, headroom)),
                     key=lambda c: (c.monthly_cost, c.instance_type))
    if not fitting or fitting[0].instance_type == cur.name:
        return None
    best = fitting[0]
    reasons = _reasons(current, best, headroom)
    direction = "smaller" if best.monthly_savings > 0 else "larger"
    return Recommendation(u, "MODIFY", now, best, reasons, (
        f"{u.instance_type} at p95 CPU {_pct(u.cpu_p95)}, max memory {_pct(u.memory_max)}"
        f" -> {direction} {best.instance_type} (projected p95 CPU {_pct(best.cpu_p95)}, max "
        f"memory {_pct(best.memory_max)}; rule: p95 CPU <= {headroom.cpu_p95:g} %, max memory "
        f"<= {headroom.memory_max:g} %, p95 GPU <= {headroom.gpu_p95:g} %)"))


def _candidates(catalog: Catalog, cur: InstanceType, target: str) -> Sequence[str]:
    names = catalog.names()
    if target == SAME_FAMILY:
        names = [n for n in names if family(n) == family(cur.name)]
    # A variant on GPUs stays on GPUs: its model may need one whatever the utilisation says.
    if cur.gpu_count:
        names = [n for n in names if catalog.get(n).gpu_count]
    return names


def _reasons(current: Target, best: Target, headroom: Headroom) -> tuple[str, ...]:
    if best.monthly_savings > 0:
        out = []
        if current.cpu_p95 is not None and current.cpu_p95 < headroom.cpu_p95:
            out.append("CPU_OVER_PROVISIONED")
        if current.memory_max is not None and current.memory_max < headroom.memory_max:
            out.append("MEMORY_OVER_PROVISIONED")
        return tuple(out)
    out = []
    if current.cpu_p95 is not None and current.cpu_p95 > headroom.cpu_p95:
        out.append("CPU_UNDER_PROVISIONED")
    if current.memory_max is not None and current.memory_max > headroom.memory_max:
        out.append("MEMORY_UNDER_PROVISIONED")
    return tuple(out)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"
