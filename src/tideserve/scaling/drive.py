"""One driver step, for either clock: tick, apply the SetCapacity effects through the edge,
record how each went. The live driver (autoscaling.driver) runs it on wall time around a
store load and save; the simulator (sim.loop) on simulated time around its world in memory —
the same function, so the two cannot drift apart in what they decide or record.

    result = drive_once(world, observe, now, apply, config)   # observe(world) -> Observation
    store.save_world(world, result)      # result.world, result.activities: what to persist
    for line in result.reasons: log.info(line)

`observe` reads what the tick may look at (capacities, metrics) for the world's targets.
`apply` is the edge's one verb: ask the endpoint for a capacity and say how it went. It
returns Applied (error None when the endpoint accepted, else the target service's message)
or None when the edge cannot tell (it crashed mid-call): that activity stays Pending and the
next tick asks again, or sees that the change took.
"""

from __future__ import annotations

from collections.abc import Callable

from tideserve.errors import TideserveError
from tideserve.scaling.tick import record_outcomes, tick
from tideserve.scaling.world import (
    Applied,
    Observation,
    SetCapacity,
    TickConfig,
    TickResult,
    World,
)

Apply = Callable[[SetCapacity], Applied | None]
Observe = Callable[[World], Observation]

# Ticks one step may run at one instant: a change the endpoint fulfils at once (a scale-in, a
# capacity it already had) completes on the next tick, and that tick may decide again.
SETTLE_TICKS = 3


def drive_once(
    world: World, observe: Observe, now: float, apply: Apply, config: TickConfig | None = None
) -> TickResult:
    """The tick at `now`, its capacities applied, their outcomes recorded; then, while a
    capacity the endpoint accepted is already in service (`observe` reads it again), another
    tick at the same instant, so its activity completes — and its cooldown starts — when the
    endpoint settled, not one driver cadence later. At most SETTLE_TICKS ticks.

    The result's world is the world after all of it; its activities are every one created or
    changed, in order (a later copy of an activity supersedes an earlier one); its effects,
    reasons and `applied` are every tick's, in order."""
    ticks: list[TickResult] = []
    obs = observe(world)
    for _ in range(SETTLE_TICKS):
        result = _tick_and_apply(world, obs, now, apply, config)
        ticks.append(result)
        world = result.world
        accepted = [a for a in result.applied if a.error is None]
        if not accepted:
            break
        obs = observe(world)  # what the endpoint says now that it was asked
        if not _settled_at_once(accepted, obs):
            break
    if len(ticks) == 1:
        return ticks[0]
    return TickResult(
        world,
        tuple(e for t in ticks for e in t.effects),
        tuple(a for t in ticks for a in t.activities),
        tuple(r for t in ticks for r in t.reasons),
        tuple(a for t in ticks for a in t.applied),
    )


def refused(effect: SetCapacity, error: TideserveError) -> Applied:
    """The endpoint said no (e.g. ConflictError while Updating): the activity's StatusMessage
    quotes SageMaker's message and error code, as AAS does. SageMaker reports a busy endpoint
    and a bad request alike as ValidationException."""
    code = error.code or "ValidationException"
    return Applied(effect, f"{error.message} (Service: AmazonSageMaker; Error Code: {code})")


def _tick_and_apply(
    world: World, obs: Observation, now: float, apply: Apply, config: TickConfig | None
) -> TickResult:
    """One tick, its SetCapacity effects applied and their outcomes recorded (at `now` too:
    the edge answers within the step)."""
    decided = tick(world, obs, now, config)
    answers = [apply(e) for e in decided.effects if isinstance(e, SetCapacity)]
    applied = tuple(a for a in answers if a is not None)
    if not applied:
        return decided
    outcome = record_outcomes(decided.world, applied, now, config)
    return TickResult(outcome.world, decided.effects, decided.activities + outcome.activities,
                      decided.reasons, applied)


def _settled_at_once(accepted: list[Applied], obs: Observation) -> bool:
    """Some endpoint already serves the capacity it accepted."""
    for a in accepted:
        capacity = obs.capacities.get(a.effect.key.resource_id)
        if capacity is not None and capacity.settled and capacity.desired == a.effect.capacity:
            return True
    return False
