"""A mergeable quantile sketch for CloudWatch percentiles (pNN).

Log-bucketed, after DDSketch (Masson et al., VLDB 2019): a positive value v lands in bucket
i = ceil(log(v) / log(gamma)) with gamma = (1 + a) / (1 - a), and bucket i stands for the value
2 * gamma**i / (gamma + 1), which is within a relative error `a` of every value in the bucket.
Buckets merge by adding counts, so sketches of 60-s periods merge into the exact sketch a 300-s
query would have built from the raw values.

Worked example, a = 0.01 so gamma = 1.0202...:
    v = 1500 us   -> log(1500)/log(gamma) = 7.313/0.02000 = 365.6 -> bucket 366
    bucket 366    -> 2 * gamma**366 / (gamma + 1) = 1500.9 us (0.06 % off; at most 1 %)
A period of 10 000 requests between 1 ms and 2 s touches at most ~380 buckets, whatever the
count, so a sketch stays a few KB.

CloudWatch rules carried here:
- exact for a single value, for min/max and for the first and last ranks (p99 of fewer than
  100 values is the maximum itself); other estimates are clamped to [minimum, maximum];
- zero is counted in its own bucket;
- a negative value (or a statistic set with spread, which has no raw values) makes percentiles
  unavailable: `quantile` answers None and CloudWatch omits the statistic (§5.5).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)

_VERSION = 1
_HEADER = struct.Struct("<BBddddI")  # version, complete, count, zeros, min, max, n_bins


@dataclass(frozen=True)
class Sketch:
    """An immutable sketch. `bins` are (bucket index, count) sorted by index; counts are floats
    because PutMetricData's Counts and StatisticValues.SampleCount are doubles."""

    bins: tuple[tuple[int, float], ...]
    zero_count: float
    count: float
    minimum: float
    maximum: float
    # False once any value could not be sketched (negative, or a statistic set with spread).
    complete: bool = True

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), or None when CloudWatch would omit it."""
        if not self.complete or self.count <= 0:
            return None
        if q <= 0:
            return self.minimum
        if q >= 1:
            return self.maximum
        # Nearest rank: the smallest value with at least q of the weight at or below it
        # (p90 of {4, 6} is 6, p50 is 4).
        rank = q * self.count * (1 - 1e-12)
        # The first and last ranks are the exact minimum and maximum, which the sketch keeps:
        # p99 of 5 latencies is the largest one itself, not its bucket's midpoint (1 % off).
        if rank <= 1.0:
            return self.minimum
        if rank > self.count - 1.0:
            return self.maximum
        seen = self.zero_count
        if seen >= rank:
            return self._clamp(0.0)
        for index, n in self.bins:
            seen += n
            if seen >= rank:
                return self._clamp(2.0 * GAMMA**index / (GAMMA + 1.0))
        return self.maximum

    def _clamp(self, v: float) -> float:
        return min(max(v, self.minimum), self.maximum)

    def merge(self, other: Sketch) -> Sketch:
        return merge_sketches((self, other))

    def to_bytes(self) -> bytes:
        n = len(self.bins)
        head = _HEADER.pack(
            _VERSION, int(self.complete), self.count, self.zero_count,
            self.minimum, self.maximum, n,
        )
        indices = struct.pack(f"<{n}i", *(i for i, _ in self.bins))
        counts = struct.pack(f"<{n}d", *(c for _, c in self.bins))
        return head + indices + counts

    @staticmethod
    def from_bytes(data: bytes) -> Sketch:
        version, complete, count, zeros, lo, hi, n = _HEADER.unpack_from(data, 0)
        if version != _VERSION:
            raise ValueError(f"unknown sketch encoding version {version}")
        off = _HEADER.size
        indices = struct.unpack_from(f"<{n}i", data, off)
        counts = struct.unpack_from(f"<{n}d", data, off + 4 * n)
        return Sketch(tuple(zip(indices, counts, strict=True)), zeros, count, lo, hi,
                      bool(complete))


def bucket_index(value: float) -> int:
    """Bucket of a positive value."""
    return math.ceil(math.log(value) * _INV_LOG_GAMMA)


def merge_sketches(sketches: Iterable[Sketch]) -> Sketch:
    bins: dict[int, float] = {}
    zeros = count = 0.0
    lo, hi = math.inf, -math.inf
    complete = True
    for s in sketches:
        for index, n in s.bins:
            bins[index] = bins.get(index, 0.0) + n
        zeros += s.zero_count
        count += s.count
        lo, hi = min(lo, s.minimum), max(hi, s.maximum)
        complete = complete and s.complete
    return Sketch(tuple(sorted(bins.items())), zeros, count, lo, hi, complete)


class SketchBuilder:
    """The mutable side, used inside the aggregator's lock; `freeze` makes a Sketch."""

    __slots__ = ("bins", "zero_count", "count", "minimum", "maximum", "complete")

    def __init__(self) -> None:
        self.bins: dict[int, float] = {}
        self.zero_count = 0.0
        self.count = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.complete = True

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if value > 0.0:
            i = math.ceil(math.log(value) * _INV_LOG_GAMMA)
            self.bins[i] = self.bins.get(i, 0.0) + count
        elif value == 0.0:
            self.zero_count += count
        else:
            self.complete = False

    def add_statistic_set(self, sample_count: float, minimum: float, maximum: float) -> None:
        """A statistic set has no raw values; it is sketchable only when every value is the
        same (minimum == maximum, which covers SampleCount == 1)."""
        if minimum == maximum:
            self.add(minimum, sample_count)
            return
        self.count += sample_count
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        self.complete = False

    def freeze(self) -> Sketch:
        return Sketch(
            tuple(sorted(self.bins.items())), self.zero_count, self.count,
            self.minimum, self.maximum, self.complete,
        )
