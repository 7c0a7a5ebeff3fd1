"""How long the fleet's new instances took to serve, kept in memory for the driver.

A scale-out's activity says "instances started in X s" when it completes. The fleet also
publishes the figure as tideserve/InstanceStartupTime, but a metric reaches the store only
when its period closes, usually after the activity completed, so reading it there left the
live message without the figure where the simulator (which knows its start-ups) had it. The
fleet reports each ready instance here as it happens; the driver asks for the longest in a
window. Kept per variant, the last few only: an activity asks about the minutes just past.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque

KEEP_PER_VARIANT = 64


class StartupLog:
    def __init__(self) -> None:
        self._ready: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(
            lambda: deque(maxlen=KEEP_PER_VARIANT))
        self._lock = threading.Lock()  # written on the event loop, read in the driver's thread

    def record(self, endpoint: str, variant: str, ready_at: float, seconds: float) -> None:
        with self._lock:
            self._ready[(endpoint.lower(), variant)].append((ready_at, seconds))

    def longest(self, resource_id: str, since: float, until: float) -> float | None:
        """Observation.startup_seconds: the longest start-up of the variant's instances that
        became ready in [since, until]; None without one."""
        parts = resource_id.split("/")
        if len(parts) != 4:
            return None
        with self._lock:
            ready = list(self._ready.get((parts[1].lower(), parts[3]), ()))
        return max((s for at, s in ready if since <= at <= until), default=None)
