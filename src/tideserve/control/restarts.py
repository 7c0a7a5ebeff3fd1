"""The controller's memory of crash loops, per variant (fleet/backoff.py decides the waits).

It turns a loop into what DescribeEndpoint shows: ProductionVariants[].VariantStatus, one
entry with Status "Updating" (botocore's VariantStatus enum has no failed state; the variant
is being brought back to its desired count), the reason and the backoff in StatusMessage, and
StartTime at the first crash of the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tideserve.fleet.backoff import CrashLoop, RestartPolicy, after_crash, after_healthy


@dataclass
class RestartTracker:
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    loops: dict[tuple[str, str], CrashLoop] = field(default_factory=dict)
    started: dict[tuple[str, str], float] = field(default_factory=dict)

    def crashed(self, endpoint: str, variant: str, now: float, ran_seconds: float,
                reason: str) -> CrashLoop:
        key = (endpoint.lower(), variant)
        if key not in self.loops:
            self.started[key] = now
        loop = after_crash(self.loops.get(key), now, ran_seconds, reason, self.policy)
        if loop.crashes == 1:
            self.started[key] = now
        self.loops[key] = loop
        return loop

    def served(self, endpoint: str, variant: str, now: float, serving_since: float) -> bool:
        """An instance of the variant is serving; True when that ended the loop."""
        key = (endpoint.lower(), variant)
        loop = self.loops.get(key)
        if loop is None or after_healthy(loop, now, serving_since, self.policy) is not None:
            return False
        del self.loops[key]
        self.started.pop(key, None)
        return True

    def end(self, endpoint: str, variant: str) -> None:
        """The variant served long enough since its last crash (plan_fleet.EndCrashLoop)."""
        key = (endpoint.lower(), variant)
        self.loops.pop(key, None)
        self.started.pop(key, None)

    def of_endpoint(self, endpoint: str) -> dict[str, CrashLoop]:
        """The endpoint's variants that are crash-looping, by variant name."""
        return {v: loop for (e, v), loop in self.loops.items() if e == endpoint.lower()}

    def wait(self, endpoint: str, variant: str, now: float) -> float:
        loop = self.loops.get((endpoint.lower(), variant))
        return loop.wait(now) if loop is not None else 0.0

    def variant_status(self, endpoint: str, variant: str, now: float) -> dict[str, Any] | None:
        key = (endpoint.lower(), variant)
        loop = self.loops.get(key)
        if loop is None:
            return None
        return {"Status": "Updating", "StatusMessage": loop.status_message,
                "StartTime": self.started.get(key, loop.last_crash_at)}

    def forget(self, endpoint: str) -> None:
        for key in [k for k in self.loops if k[0] == endpoint.lower()]:
            del self.loops[key]
            self.started.pop(key, None)
