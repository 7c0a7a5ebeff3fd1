"""One driver step, for either clock: tick, apply the SetCapacity effects through the edge,
record how each went. The live driver (autoscaling.driver) runs it on wall time around a
store load and save; the simulator (sim.loop) on simulated time around its world in memory —
the same function, so the two cannot drift apart in what they decide or record.

    result = drive_once(world, observation, now, apply, config)
    store.save_world(world, result)      # result.world, result.activities: what to persist
    for line in result.reasons: log.info(line)

`apply` is the edge's one verb: ask the endpoint for a capacity and say how it went. It
returns Applied (error None when the endpoint accepted, else the target service's message)
or None when the edge cannot tell (it crashed mid-call): that activity stays Pending and the
next tick asks again, or sees that the change took.
"""

from __future__ import annotations

from collections.abc import Callable

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


def drive_once(
    world: World, obs: Observation, now: float, apply: Apply, config: TickConfig | None = None
) -> TickResult:
    """The tick at `now`, its capacities applied, their outcomes recorded (at `now` too: the
    edge answers within the step). The result's world is the world after all of it; its
    activities are every one created or changed, in order (a later copy of an activity
    supersedes an earlier one); its effects and reasons are the tick's; `applied` says how
    each SetCapacity went."""
    decided = tick(world, obs, now, config)
    answers = [apply(e) for e in decided.effects if isinstance(e, SetCapacity)]
    applied = tuple(a for a in answers if a is not None)
    if not applied:
        return decided
    outcome = record_outcomes(decided.world, applied, now, config)
    return TickResult(outcome.world, decided.effects, decided.activities + outcome.activities,
                      decided.reasons, applied)
