"""When to start again an instance whose process died: exponential backoff, capped.

SageMaker replaces a failed instance but documents no schedule; a model that crashes on
every request must not be restarted in a tight loop (it was: 9 restarts in 10 s), so the
wait doubles from `base_seconds` with every crash in a row up to `cap_seconds`, as
Kubernetes' CrashLoopBackOff does. An instance that served for `stable_seconds` before it
died resets the count: a crash an hour after the last one is a new story.

Worked example with the defaults (1 s, cap 300 s): crashes in a row wait 1, 2, 4, 8, ... s,
so the ninth waits 256 s and every later one 300 s; nine crashes then take ~8.5 minutes, not
ten seconds.

Pure: time is a parameter, state a frozen value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    stable_seconds: float = 60.0


@dataclass(frozen=True)
class CrashLoop:
    """A variant's crashes in a row, and when a replacement may start (both in seconds of
    the clock that was passed in)."""

    crashes: int
    last_crash_at: float
    next_start_at: float
    reason: str

    def wait(self, now: float) -> float:
        """Seconds until a replacement may start; 0 when it may start now."""
        return max(0.0, self.next_start_at - now)

    @property
    def status_message(self) -> str:
        backoff = self.next_start_at - self.last_crash_at
        return (f"{self.crashes} instance exit(s) in a row, the last: {self.reason} "
                f"Waiting {backoff:.0f} s before starting a replacement.")[:1024]


def after_crash(previous: CrashLoop | None, now: float, ran_seconds: float, reason: str,
                policy: RestartPolicy = RestartPolicy()) -> CrashLoop:
    """The crash loop once an instance that ran `ran_seconds` has died at `now`."""
    in_a_row = previous is not None and ran_seconds < policy.stable_seconds
    crashes = previous.crashes + 1 if in_a_row and previous is not None else 1
    delay = min(policy.cap_seconds, policy.base_seconds * 2 ** (crashes - 1))
    return CrashLoop(crashes, now, now + delay, reason)


def after_healthy(previous: CrashLoop | None, now: float, serving_since: float,
                  policy: RestartPolicy = RestartPolicy()) -> CrashLoop | None:
    """Forget the loop once an instance has served `stable_seconds` without dying."""
    if previous is not None and now - serving_since >= policy.stable_seconds:
        return None
    return previous
