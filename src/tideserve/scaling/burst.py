"""tideserve extension (beyond AWS): a burst mode, after Knative's panic window.

A metric period (60 s) is too slow for a burst that arrives within seconds. Alongside any
policy, the burst mode watches a short window (default 6 s, Knative's panic window is 10 % of
its 60-s stable window) of arrivals:

- it *enters* burst mode when the short window's load needs at least `threshold` times the
  capacity now asked for (Knative's panic threshold, 200 %): load = λ_short × S̄ busy slots,
  needed = ceil(load / (concurrency × utilization));
- in burst mode it scales out at once to what the short window needs (never waiting for an
  alarm or a cooldown; the endpoint's own Updating state still serialises changes), and it
  never scales in: the base policy's lower proposals are held off;
- it *leaves* burst mode once `stable_window` seconds (default 60) have passed without the
  entry condition.

Worked example: 4 instances × 8 slots at utilization 1 with S̄ = 1 s serve 32 req/s. A
6-s window of 450 requests is 75 req/s → needs ceil(75 / 8) = 10 ≥ 2 × 4: burst, ask for 10
now. Ten seconds later the window shows 20 req/s (needs 3): still in burst mode, hold 10;
60 s after the last trigger, the base policy decides again.

Pure: plain values in, a decision with its reason out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tideserve.errors import ValidationError


@dataclass(frozen=True)
class BurstConfig:
    window_seconds: float = 6.0  # the short window the load is read over
    threshold: float = 2.0  # needed / current that enters burst mode (Knative: 200 %)
    stable_window: float = 60.0  # seconds without a trigger before burst mode ends
    utilization: float = 1.0  # the share of slots the burst capacity plans to keep busy
    max_capacity: int = 64

    def __post_init__(self) -> None:
        if self.window_seconds <= 0 or self.stable_window < 0:
            raise ValidationError("burst: window_seconds must be > 0, stable_window ≥ 0")
        if self.threshold <= 1:
            raise ValidationError(f"burst.threshold {self.threshold} must be > 1 (a multiple "
                                  "of the capacity asked for)")
        if not 0 < self.utilization <= 1:
            raise ValidationError(f"burst.utilization {self.utilization} must be in (0, 1]")


@dataclass(frozen=True)
class BurstState:
    triggered_at: float | None = None  # the last time the entry condition held (epoch s)

    def active(self, config: BurstConfig, now: float) -> bool:
        return self.triggered_at is not None and now - self.triggered_at < config.stable_window


@dataclass(frozen=True)
class BurstDecision:
    desired: int
    state: BurstState
    active: bool
    reason: str


def burst_needed(config: BurstConfig, short_rate: float, service_mean: float,
                 concurrency: int) -> int:
    """Instances the short window's load needs."""
    load = short_rate * service_mean
    return min(config.max_capacity,
               math.ceil(load / (concurrency * config.utilization) - 1e-9))


def decide_burst(config: BurstConfig, state: BurstState, short_rate: float,
                 service_mean: float, concurrency: int, current: int, base: int,
                 now: float) -> BurstDecision:
    """Combine the base policy's proposal `base` with the burst mode, `current` being the
    capacity asked for now."""
    needed = burst_needed(config, short_rate, service_mean, concurrency)
    trigger = needed > 0 and needed >= config.threshold * max(current, 1) - 1e-9
    if current == 0 and needed > 0:
        trigger = True
    if trigger:
        state = BurstState(now)
    if not state.active(config, now):
        return BurstDecision(base, state, False, "")
    desired = max(base, current, needed)
    if trigger:
        why = (f"burst: the last {config.window_seconds:g} s need {needed} instances, "
               f"≥ {config.threshold:g} × {current}; scale out at once")
    else:
        why = (f"burst mode until {config.stable_window:g} s pass without a burst: scale-in "
               "held")
    return BurstDecision(desired, state, True, why)
