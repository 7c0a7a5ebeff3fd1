"""Spot capacity: instances the fleet may reclaim, with AWS's two-minute notice.

Spot is a property of capacity, not of one job: whoever runs on a spot instance (a training
job today, any job or variant kind tomorrow) acquires it here and is told when it is being
reclaimed. An instance is reclaimed either

- at random, as EC2 reclaims spare capacity: interruptions arrive as a Poisson process with a
  rate per instance type (interruptions per instance-hour, in AWS time), so each instance's
  lifetime until its notice is drawn from an exponential distribution when it is acquired; or
- on demand (`tideserve spot interrupt INSTANCE-OR-JOB`, the InterruptSpotInstance operation),
  which gives the notice now.

The notice always comes two minutes (AWS time) before the instance goes: EC2's "Spot Instance
interruption notice", scaled by the server's time scale (`--period 2` gives 4 s).

Default rate: AWS's Spot Instance Advisor buckets instance types by the share interrupted over
the trailing month; the lowest, and most common, bucket is "<5%". We take 5 % per
instance-month (730 h) as a hazard rate, -ln(0.95) / 730 = 7.0e-5 interruptions per
instance-hour, for every type. It is a ceiling of that bucket, not a measurement; users set
their own per type in `<state-dir>/spot_interruption_rates.csv` (`instance_type,per_hour`
rows, `*` for every other type), e.g. `*,0` for deterministic tests.

This module is pure bookkeeping: no I/O except reading that file, no clock (times are
passed in), randomness from an injected `random.Random`.
"""

from __future__ import annotations

import csv
import math
import random
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

# EC2 warns two minutes before it reclaims a spot instance.
NOTICE_SECONDS = 120.0
SECONDS_PER_HOUR = 3600.0
DEFAULT_INTERRUPTIONS_PER_HOUR = -math.log(0.95) / 730.0
RATES_FILE = "spot_interruption_rates.csv"


@dataclass(frozen=True)
class SpotInstance:
    """One spot instance lent to `holder` (e.g. a training job's name). Times are epoch
    seconds; `notice_at` is when the reclaim notice comes (None: never, a rate of 0)."""

    instance_id: str
    instance_type: str
    holder: str
    acquired_at: float
    notice_at: float | None
    reclaim_at: float | None = None  # set once noticed: notice_at + the scaled two minutes

    def noticed(self, now: float) -> bool:
        return self.notice_at is not None and self.notice_at <= now


class SpotCapacity:
    def __init__(self, rates: dict[str, float] | None = None, time_scale: float = 1.0,
                 rng: random.Random | None = None) -> None:
        # rates: instance type (or "*") -> interruptions per instance-hour, AWS time
        self.rates = dict(rates or {})
        self.time_scale = time_scale
        self.rng = rng or random.Random()
        self._instances: dict[str, SpotInstance] = {}
        self._withheld: dict[str, float] = {}  # instance type -> no spot capacity until then

    @classmethod
    def from_state_dir(cls, state_dir: Path, time_scale: float) -> SpotCapacity:
        return cls(read_rates(state_dir / RATES_FILE), time_scale)

    @property
    def notice_seconds(self) -> float:
        """The two-minute notice, in our (scaled) seconds."""
        return NOTICE_SECONDS * self.time_scale

    def rate(self, instance_type: str) -> float:
        return self.rates.get(instance_type, self.rates.get("*", DEFAULT_INTERRUPTIONS_PER_HOUR))

    def acquire(self, instance_type: str, holder: str, now: float) -> SpotInstance:
        """A fresh spot instance for `holder`, with its random reclaim notice drawn."""
        rate = self.rate(instance_type)
        notice_at = None
        if rate > 0:
            hours = self.rng.expovariate(rate)
            notice_at = now + hours * SECONDS_PER_HOUR * self.time_scale
        instance = SpotInstance(f"i-spot-{uuid.uuid4().hex[:12]}", instance_type, holder,
                                now, notice_at)
        self._instances[instance.instance_id] = instance
        return instance

    def available(self, instance_type: str, now: float) -> bool:
        """Whether spot capacity of this type can be had now (EC2 may have none for a while
        after reclaiming it: the holder then waits, and MaxWaitTimeInSeconds runs)."""
        return self._withheld.get(instance_type, 0.0) <= now

    def withhold(self, instance_type: str, until: float) -> None:
        self._withheld[instance_type] = max(until, self._withheld.get(instance_type, 0.0))

    def release(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    def interrupt(self, instance_or_holder: str, now: float,
                  unavailable_seconds: float = 0.0) -> SpotInstance | None:
        """Give the notice now to the instance with this id, or held by this holder; None if
        there is none. An instance already noticed keeps its earlier notice. With
        `unavailable_seconds` (AWS seconds), no spot capacity of its type is to be had for
        that long after the reclaim."""
        instance = self.find(instance_or_holder, now)
        if instance is None:
            return None
        if not instance.noticed(now):
            instance = replace(instance, notice_at=now)
            self._instances[instance.instance_id] = instance
        noticed = self.get(instance.instance_id)
        if noticed is not None and noticed.reclaim_at is not None and unavailable_seconds > 0:
            self.withhold(noticed.instance_type,
                          noticed.reclaim_at + unavailable_seconds * self.time_scale)
        return noticed

    def find(self, instance_or_holder: str, now: float = math.inf) -> SpotInstance | None:
        """The instance with this id, else one held by this holder: the first acquired that
        has had no notice by `now` (a transform job holds several), else the first."""
        found = self._instances.get(instance_or_holder)
        if found is not None:
            return found
        wanted = instance_or_holder.lower()
        held = [i for i in self._instances.values() if i.holder.lower() == wanted]
        return next((i for i in held if not i.noticed(now)), held[0] if held else None)

    def get(self, instance_id: str) -> SpotInstance | None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.notice_at is None:
            return instance
        return replace(instance, reclaim_at=instance.notice_at + self.notice_seconds)

    def held(self) -> list[SpotInstance]:
        return [i for i in (self.get(k) for k in list(self._instances)) if i is not None]


def read_rates(path: Path) -> dict[str, float]:
    """`instance_type,per_hour` rows (a header and # comments allowed); {} if no file."""
    if not path.is_file():
        return {}
    rates: dict[str, float] = {}
    lines = [ln for ln in path.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    for row in csv.reader(lines):
        if len(row) < 2 or row[0].strip() == "instance_type":
            continue
        try:
            value = float(row[1])
        except ValueError:
            raise ValueError(f"{path}: {row[1]!r} is not a rate per instance-hour") from None
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{path}: the rate for {row[0]} must be a number >= 0")
        rates[row[0].strip()] = value
    return rates
