"""Instance-based variants' decisions (real-time endpoints, and async ones, which are the same
instances behind a queue): how many instances to start or stop, when a crashed one may be
replaced, when a blue/green update switches or reverts, which routes and Current* fields to
write. Pure: instance_kind.py observes, calls these, carries the actions out, and plans again
until the plan is empty.

Scale out: launch, wait until /ping answers, then route. Scale in: unroute the least busy,
newest instances, let their requests finish, then stop them. A replacement waits out the
variant's crash-loop backoff (fleet/backoff.py). UpdateEndpoint is blue/green: the new
config's fleet comes up unrouted beside the old, all traffic shifts at once, then the old
fleet retires; if the new fleet fails, it is retired and the old one keeps serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tideserve.control.plan import Desired, VariantSpec
from tideserve.fleet.backoff import CrashLoop, RestartPolicy, after_healthy

LIVE = ("Pending", "InService")  # the instances that count toward a variant's desired count


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    variant: str
    fleet: str  # the endpoint config that launched it
    state: str  # Pending -> InService -> Draining
    requested_at: float
    ready_at: float | None = None
    in_flight: int = 0  # requests the router has on it now
    exit_code: int | None = None  # set once its process has exited


@dataclass(frozen=True)
class FleetObserved:
    now: float
    instances: tuple[InstanceView, ...] = ()
    # The endpoint's route: variant -> weight; None when it has no route yet.
    route: Mapping[str, float] | None = None
    loops: Mapping[str, CrashLoop] = field(default_factory=dict)  # variants crash-looping
    restart_status: Mapping[str, Any] = field(default_factory=dict)  # their RestartStatus
    failure: str | None = None  # why the previous round's launches failed


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchInstances:
    """Start `count` instances of a variant for `fleet`; route each once it answers /ping
    (`routed`), or leave them for a blue/green switch."""

    variant: str
    fleet: str
    count: int
    routed: bool = True


@dataclass(frozen=True)
class RetireInstance:
    """Unroute (unless the route is already gone), drain, stop."""

    instance_id: str
    unroute: bool = True


@dataclass(frozen=True)
class ReapExited:
    """Its process exited unasked: unroute and forget it, and count the crash."""

    instance_id: str
    exit_code: int


@dataclass(frozen=True)
class EndCrashLoop:
    """The variant has served long enough since its last crash: its backoff starts over."""

    variant: str


@dataclass(frozen=True)
class WaitUntil:
    """Converge again at `at` (seconds, clock time): a replacement is backing off."""

    at: float


@dataclass(frozen=True)
class UpdateRoutes:
    """Set these variants' weights, adding a route (and variant routes) where missing."""

    weights: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SwitchRoutes:
    """Blue/green: the route becomes the new fleet's variants, with their InService
    instances as backends."""

    fleet: str
    weights: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class PromoteGreen:
    """The new config's variants become the endpoint's; InService."""

    config_name: str


@dataclass(frozen=True)
class RevertUpdate:
    """The new fleet failed: drop the pending deployment, keep serving, say why."""

    reason: str


@dataclass(frozen=True)
class ObservedVariant:
    name: str
    instance_count: int
    weight: float
    restart_status: Any = None


@dataclass(frozen=True)
class WriteObserved:
    """Copy what serves into the row's CurrentInstanceCount, CurrentWeight, RestartStatus."""

    variants: tuple[ObservedVariant, ...]


@dataclass(frozen=True)
class GiveUp:
    """Scaling failed: the endpoint's plan marks it failed with this reason."""

    reason: str


FleetAction = (LaunchInstances | RetireInstance | ReapExited | EndCrashLoop | WaitUntil
               | UpdateRoutes | SwitchRoutes | PromoteGreen | RevertUpdate | WriteObserved
               | GiveUp)


def plan_fleet(desired: Desired, observed: FleetObserved) -> list[FleetAction]:
    exited = [ReapExited(i.instance_id, i.exit_code) for i in observed.instances
              if i.state == "InService" and i.exit_code is not None]
    if exited:
        return list(exited)
    if desired.pending_config_name:
        return _blue_green(desired, desired.pending_config_name, observed)
    if observed.failure is not None:
        return [*_write_observed(desired, observed), GiveUp(observed.failure)]
    return _scale(desired, observed)


def plan_health(observed: FleetObserved, policy: RestartPolicy) -> list[FleetAction]:
    """The periodic check: reap exited instances; end the crash loops of variants that have
    served `policy.stable_seconds` since their last crash."""
    actions: list[FleetAction] = []
    for i in observed.instances:
        if i.state != "InService":
            continue
        if i.exit_code is not None:
            actions.append(ReapExited(i.instance_id, i.exit_code))
            continue
        loop = observed.loops.get(i.variant)
        ended = EndCrashLoop(i.variant)
        if (loop is not None and ended not in actions
                and after_healthy(loop, observed.now, i.ready_at or observed.now, policy) is None):
            actions.append(ended)
    return actions


def _scale(desired: Desired, observed: FleetObserved) -> list[FleetAction]:
    waits: list[FleetAction] = []
    changes: list[FleetAction] = []
    for v in desired.variants:
        have = _live(observed, v.name, desired.config_name)
        if len(have) < v.count:
            loop = observed.loops.get(v.name)
            if loop is not None and loop.wait(observed.now) > 0:
                waits.append(WaitUntil(loop.next_start_at))
                continue
            changes.append(LaunchInstances(v.name, desired.config_name, v.count - len(have)))
        elif len(have) > v.count:
            victims = sorted(have, key=lambda i: (i.in_flight, -i.requested_at))
            changes += [RetireInstance(i.instance_id) for i in victims[: len(have) - v.count]]
    if changes:
        return waits + changes
    # Weights move once every variant has its instances (or is waiting out a backoff).
    route = observed.route or {}
    weights = tuple((v.name, v.weight) for v in desired.variants
                    if observed.route is None or route.get(v.name) != v.weight)
    routes: list[FleetAction] = [UpdateRoutes(weights)] if weights else []
    after = {**route, **dict(weights)}
    return waits + routes + _write_observed(desired, observed, after)


def _blue_green(desired: Desired, fleet: str, observed: FleetObserved) -> list[FleetAction]:
    green = [i for i in observed.instances if i.fleet == fleet]
    if observed.failure is not None:
        reason = f"Updating the endpoint failed: {observed.failure}"
        return [*(RetireInstance(i.instance_id) for i in green), RevertUpdate(reason)]
    launches: list[FleetAction] = []
    for v in desired.pending_variants:
        have = _live(observed, v.name, fleet)
        if len(have) < v.count:
            launches.append(LaunchInstances(v.name, fleet, v.count - len(have), routed=False))
    if launches:
        return launches
    blue = [i for i in observed.instances if i.fleet != fleet]
    return [SwitchRoutes(fleet, tuple((v.name, v.weight) for v in desired.pending_variants)),
            *(RetireInstance(i.instance_id, unroute=False) for i in blue),
            PromoteGreen(fleet)]


def _live(observed: FleetObserved, variant: str, fleet: str) -> list[InstanceView]:
    return [i for i in observed.instances
            if i.variant == variant and i.fleet == fleet and i.state in LIVE]


def observed_variants(desired: Desired, observed: FleetObserved,
                      route: Mapping[str, float] | None = None) -> tuple[ObservedVariant, ...]:
    """The Current* fields the row should show: instances serving in the endpoint's config,
    the routed weight (the recorded one while unrouted) and any crash loop's status."""
    weights = route if route is not None else (observed.route or {})
    return tuple(
        ObservedVariant(
            v.name,
            sum(1 for i in _live(observed, v.name, desired.config_name)
                if i.state == "InService"),
            weights.get(v.name, v.current_weight),
            observed.restart_status.get(v.name),
        )
        for v in desired.variants
    )


def _write_observed(desired: Desired, observed: FleetObserved,
                    route: Mapping[str, float] | None = None) -> list[FleetAction]:
    now = observed_variants(desired, observed, route)
    recorded = tuple(_recorded(v) for v in desired.variants)
    return [WriteObserved(now)] if now != recorded else []


def _recorded(v: VariantSpec) -> ObservedVariant:
    return ObservedVariant(v.name, v.current_count, v.current_weight, v.restart_status)
