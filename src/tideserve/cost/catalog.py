"""The price catalog: instance types with their size and hourly price.

The default catalog ships in `data/instance_types.csv` (AWS's common ml.* hosting types,
us-east-1). Users add their own hardware with a CSV of the same columns (e.g. `local.gpu-box`
priced at its amortised cost per hour), which overrides or extends the default.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tideserve.errors import ValidationError

CATALOG_REGION = "us-east-1"
CATALOG_DATE = "2026-11"
# Serverless inference (on demand) is billed per GB-second of request duration: memory (GB) x
# duration, ms granularity, no per-request fee. us-east-1, approx. and UNCONFIRMED (spec §6.1):
# $0.00002 per GB-second, i.e. $0.0000200/s at 1 GB ... $0.0001200/s at 6 GB.
SERVERLESS_USD_PER_GB_SECOND = 0.00002
# Provisioned concurrency is billed for the whole time it is configured, per GB-second of
# provisioned memory, at a lower rate. AWS's SageMaker rate is UNCONFIRMED here (spec §6.1);
# this approximation keeps Lambda's published ratio of provisioned to on-demand duration
# price (0.0000041667 / 0.0000166667 = 1/4): $0.000005 per GB-second, $0.018/h at 1 GB.
# Requests served by provisioned workers are billed at SERVERLESS_USD_PER_GB_SECOND (AWS
# charges a lower duration rate for them, but we have no SageMaker figure to cite).
SERVERLESS_PROVISIONED_USD_PER_GB_SECOND = 0.000005


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    gpu_count: int
    gpu_model: str
    gpu_memory_gib: float
    on_demand_hourly_usd: float
    spot_discount: float  # share of on-demand saved on spot capacity, 0..1
    savings_plan_rate: float  # savings-plan price as a share of on-demand, 0..1
    confidence: str

    @property
    def price_per_second_usd(self) -> float:
        return self.on_demand_hourly_usd / 3600.0


def _rows(lines: list[str]) -> list[InstanceType]:
    body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    out = []
    for row in csv.DictReader(body):
        out.append(
            InstanceType(
                name=row["name"],
                vcpu=int(row["vcpu"]),
                memory_gib=float(row["memory_gib"]),
                gpu_count=int(row.get("gpu_count") or 0),
                gpu_model=row.get("gpu_model") or "",
                gpu_memory_gib=float(row.get("gpu_memory_gib") or 0),
                on_demand_hourly_usd=float(row["on_demand_hourly_usd"]),
                spot_discount=float(row.get("spot_discount") or 0),
                savings_plan_rate=float(row.get("savings_plan_rate") or 1),
                confidence=row.get("confidence") or "user",
            )
        )
    return out


class Catalog:
    def __init__(self, types: list[InstanceType]) -> None:
        self._types = {t.name: t for t in types}

    @classmethod
    def default(cls, extra: Path | None = None) -> Catalog:
        text = resources.files("tideserve.cost").joinpath("data/instance_types.csv").read_text()
        types = _rows(text.splitlines())
        if extra is not None and extra.exists():
            types += _rows(extra.read_text().splitlines())
        return cls(types)

    def names(self) -> list[str]:
        return sorted(self._types)

    def get(self, name: str) -> InstanceType:
        try:
            return self._types[name]
        except KeyError:
            raise ValidationError(
                f"Value '{name}' at 'instanceType' failed to satisfy constraint: "
                f"the instance type is not in the price catalog (known: "
                f"{', '.join(self.names()[:8])}, ...; "
                "add your own in <state-dir>/instance_types.csv)"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._types
