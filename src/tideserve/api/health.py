"""GET /healthz: whether this server can serve what it has accepted.

- 503 `starting` until the server's start-up is done;
- 503 `recovering` while endpoints that were InService before a restart are still bringing
  their instances back (a load balancer or `tideserve up` script that waits for 200 then
  never sees the 503s an InvokeEndpoint would get meanwhile);
- 200 `ok` when every real-time endpoint has an instance in service for each variant that
  takes traffic, else 200 `degraded`, naming the endpoints that cannot serve now (their
  instances crashed and are backing off, say). That is 200 on purpose: the server still serves
  every other endpoint, so taking it out of a load balancer would turn one bad model into an
  outage of all of them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    recovering: tuple[str, ...] = ()  # endpoint names restored at start, not serving yet
    not_serving: tuple[str, ...] = ()  # InService endpoints with a variant that cannot serve


def health(started: bool, readiness: Readiness) -> tuple[int, dict[str, object]]:
    if not started:
        return 503, {"status": "starting"}
    if readiness.recovering:
        return 503, {"status": "recovering", "recovering": list(readiness.recovering)}
    if readiness.not_serving:
        return 200, {"status": "degraded", "notServing": list(readiness.not_serving)}
    return 200, {"status": "ok"}


def sorted_names(names: Collection[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=str.lower))
