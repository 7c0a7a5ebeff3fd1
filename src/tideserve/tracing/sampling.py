"""Which requests are traced by default: X-Ray's default sampling rule, "the first request
each second, and five percent of any additional requests" (X-Ray developer guide,
xray-console-sampling). One request a second is the reservoir, so someone trying an endpoint
by hand sees every request they make; under load only ~5% pay for a trace. It is the root
of a parent-based sampler: a client that sends a sampled traceparent or X-Amzn-Trace-Id is
always traced, and one that says not sampled never is.

Like X-Ray's SDK, the rate test reads the trace id (its low 64 bits against rate x 2^64, as
OpenTelemetry's TraceIdRatioBased does), so the decision is the same wherever the id goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

RESERVOIR_PER_SECOND = 1
RATE = 0.05
_ID_BITS = (1 << 64) - 1


class ReservoirThenRate(Sampler):
    def __init__(self, per_second: int = RESERVOIR_PER_SECOND, rate: float = RATE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.rate = rate
        self.clock = clock
        self._bound = round(rate * (_ID_BITS + 1))
        self._second = -1
        self._taken = 0
        self._lock = threading.Lock()

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if self._from_reservoir() or (trace_id & _ID_BITS) < self._bound:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def _from_reservoir(self) -> bool:
        second = int(self.clock())
        with self._lock:
            if second != self._second:
                self._second, self._taken = second, 0
            if self._taken < self.per_second:
                self._taken += 1
                return True
        return False

    def get_description(self) -> str:
        return f"ReservoirThenRate{{{self.per_second}/s, then {self.rate}}}"
