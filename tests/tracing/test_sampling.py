"""The default sampler, X-Ray's default rule: the first request each second, then 5% of the
rest (by trace id, so the same id always gets the same answer). A fake clock marches on."""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import Decision

from tideserve.tracing.sampling import ReservoirThenRate

LOW_ID = 0x0000000000000000_0000000000000001  # low 64 bits tiny: inside any rate > 0
HIGH_ID = 0x0000000000000000_FFFFFFFFFFFFFFFF  # outside any rate < 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def decide(sampler: ReservoirThenRate, trace_id: int) -> bool:
    return sampler.should_sample(None, trace_id, "x").decision == Decision.RECORD_AND_SAMPLE


def test_the_first_request_each_second_is_traced_and_then_five_percent():
    clock = Clock()
    sampler = ReservoirThenRate(clock=clock)
    assert decide(sampler, HIGH_ID)  # t=100.0: the second's reservoir
    assert not decide(sampler, HIGH_ID)  # t=100.0: reservoir spent, id outside 5%
    assert decide(sampler, LOW_ID)  # ...but an id inside the 5% is traced
    clock.now = 100.9
    assert not decide(sampler, HIGH_ID)  # still the same second
    clock.now = 101.0
    assert decide(sampler, HIGH_ID)  # a new second, a new reservoir


def test_the_rate_is_five_percent_of_random_ids():
    sampler = ReservoirThenRate(per_second=0, clock=Clock())
    ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 64) - 1) for i in range(1, 20001)]
    share = sum(decide(sampler, i) for i in ids) / len(ids)
    assert 0.04 < share < 0.06
