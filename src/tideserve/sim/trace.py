"""Request-arrival traces: `t_seconds,requests` CSVs (the format of examples/traces), one
row per bin, and how they become arrivals per simulation step.

A bin's requests are spread evenly over its width: a 3-s bin of 12 requests is 4 requests in
each 1-s step. That keeps the shape a trace publishes and invents no burstiness below its
resolution (the request-level mode draws the instants inside a bin uniformly at random).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tideserve.errors import ValidationError

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Trace:
    name: str
    bin_seconds: float
    counts: np.ndarray  # requests per bin, float64, length = number of bins

    @property
    def duration_seconds(self) -> float:
        return self.bin_seconds * len(self.counts)

    def arrivals(self, step_seconds: float, rate_scale: float = 1.0) -> np.ndarray:
        """Requests arriving in each step (float: a fluid quantity), scaled by `rate_scale`."""
        scaled = self.counts * rate_scale
        ratio = self.bin_seconds / step_seconds
        if abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1:
            per = int(round(ratio))
            return np.repeat(scaled / per, per)
        inverse = step_seconds / self.bin_seconds
        if abs(inverse - round(inverse)) < 1e-9:
            per = int(round(inverse))
            usable = len(scaled) // per * per
            summed: np.ndarray = scaled[:usable].reshape(-1, per).sum(axis=1)
            return summed
        raise ValidationError(
            f"Value {step_seconds} at 'simulation.step_seconds' failed to satisfy constraint: "
            f"it must divide the trace's bin ({self.bin_seconds} s) or be a multiple of it"
        )

    def window(self, start_seconds: float = 0.0, duration_seconds: float | None = None) -> Trace:
        """The bins from `start_seconds` (rounded down to a bin) for `duration_seconds`."""
        first = int(start_seconds // self.bin_seconds)
        last = len(self.counts) if duration_seconds is None else first + int(
            np.ceil(duration_seconds / self.bin_seconds))
        counts = self.counts[first:last]
        if len(counts) == 0:
            raise ValidationError(
                f"Value {start_seconds} at 'trace.start_seconds' failed to satisfy constraint: "
                f"the trace {self.name} ends at {self.duration_seconds:g} s"
            )
        return Trace(self.name, self.bin_seconds, counts)

    def tiled(self, total_seconds: float) -> Trace:
        """The trace repeated end to end until it spans `total_seconds` (a month of traffic
        from an hour-long trace, for speed tests)."""
        bins = int(np.ceil(total_seconds / self.bin_seconds))
        reps = int(np.ceil(bins / len(self.counts)))
        return Trace(self.name, self.bin_seconds, np.tile(self.counts, reps)[:bins])


    def with_quiet_tail(self, seconds: float) -> Trace:
        """The trace followed by `seconds` without traffic (rounded up to whole bins): how
        each endpoint kind winds down after the traffic stops."""
        bins = int(np.ceil(seconds / self.bin_seconds - 1e-9))
        return Trace(self.name, self.bin_seconds, np.concatenate((self.counts, np.zeros(bins))))


def expand_path(raw: str, base_dir: Path | None = None) -> Path:
    """`${VAR:-default}` and `${VAR}` from the environment, then `~`; a relative result is
    taken relative to `base_dir` (the scenario file's folder)."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value:
            return value
        if m.group(2) is not None:
            return m.group(2)
        raise ValidationError(f"Environment variable {m.group(1)} in path {raw!r} is not set")

    path = Path(_VAR.sub(sub, raw)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def load_trace(path: Path) -> Trace:
    """Read a `t_seconds,requests` CSV; bins must be evenly spaced from 0 with counts ≥ 0."""
    if not path.is_file():
        raise ValidationError(f"Trace file {path} does not exist")
    with path.open() as f:
        header = f.readline().strip().replace(" ", "")
    if header != "t_seconds,requests":
        raise ValidationError(
            f"Trace {path} must start with the header 't_seconds,requests', not {header!r}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if len(data) < 2:
        raise ValidationError(f"Trace {path} needs at least two rows")
    t, counts = data[:, 0], data[:, 1]
    widths = np.diff(t)
    width = float(widths[0])
    if width <= 0 or not np.allclose(widths, width):
        raise ValidationError(f"Trace {path}: t_seconds must be evenly spaced and increasing")
    if (counts < 0).any():
        raise ValidationError(f"Trace {path}: requests must not be negative")
    return Trace(path.stem, width, counts.copy())
