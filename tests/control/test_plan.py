"""The controller's plans as tables, Kubernetes-style: (desired, observed, now) -> actions, on a
hand-marched clock and a fake fleet (the `World` below applies actions the way the instance
kind does, with no processes). Case names state the behaviour."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from tideserve.control.plan import (
    ConvergeKind,
    DeleteRow,
    Desired,
    EndpointObserved,
    MarkFailed,
    MarkInService,
    Teardown,
    VariantSpec,
    plan,
)
from tideserve.control.plan_fleet import (
    EndCrashLoop,
    FleetAction,
    FleetObserved,
    GiveUp,
    InstanceView,
    LaunchInstances,
    ObservedVariant,
    PromoteGreen,
    ReapExited,
    RetireInstance,
    RevertUpdate,
    SwitchRoutes,
    UpdateRoutes,
    WaitUntil,
    WriteObserved,
    plan_fleet,
    plan_health,
)
from tideserve.fleet.backoff import CrashLoop, RestartPolicy, after_crash

POLICY = RestartPolicy(base_seconds=1.0, cap_seconds=300.0, stable_seconds=60.0)
LOOP = CrashLoop(crashes=2, last_crash_at=100.0, next_start_at=102.0, reason="exit 3.")
BACKING_OFF = {"Status": "Updating", "StatusMessage": LOOP.status_message, "StartTime": 99.0}


# -- builders ------------------------------------------------------------------------------


def variant(name: str = "AllTraffic", count: int = 1, weight: float = 1.0, *,
            current: int | None = None, current_weight: float | None = None,
            restart: object = None) -> VariantSpec:
    """A variant whose recorded Current* fields say it is settled unless told otherwise."""
    return VariantSpec(name, "model", "ml.m5.large", count, weight,
                       count if current is None else current,
                       weight if current_weight is None else current_weight, restart)


def endpoint(*variants: VariantSpec, status: str = "InService", pending: str | None = None,
             pending_variants: tuple[VariantSpec, ...] = (), kind: str = "Instance"
             ) -> Desired:
    return Desired("ep", status, 1, "cfg", variants or (variant(),), pending,
                   pending_variants, kind)


def inst(instance_id: str, variant: str = "AllTraffic", *, fleet: str = "cfg",
         state: str = "InService", requested_at: float = 0.0, ready_at: float | None = 1.0,
         in_flight: int = 0, exit_code: int | None = None) -> InstanceView:
    return InstanceView(instance_id, variant, fleet, state, requested_at, ready_at, in_flight,
                        exit_code)


def seen(*instances: InstanceView, now: float = 100.0, route: dict[str, float] | None = None,
         loops: dict[str, CrashLoop] | None = None, restart: dict[str, object] | None = None,
         failure: str | None = None) -> FleetObserved:
    return FleetObserved(now, instances, {"AllTraffic": 1.0} if route is None else route,
                         loops or {}, restart or {}, failure)


# -- the endpoint's lifecycle --------------------------------------------------------------

LIFECYCLE = [
    ("deleted endpoint: what runs is torn down",
     None, EndpointObserved(held=True), [Teardown()]),
    ("deleted endpoint with nothing running: nothing to do",
     None, EndpointObserved(held=False), []),
    ("Deleting: tear down, then drop the row",
     endpoint(status="Deleting"), EndpointObserved(held=True), [Teardown(), DeleteRow()]),
    ("Failed: its instances are stopped",
     endpoint(status="Failed"), EndpointObserved(held=True), [Teardown()]),
    ("Failed and already torn down: nothing to do",
     endpoint(status="Failed"), EndpointObserved(), []),
    ("Creating: converge in the owning kind, then InService",
     endpoint(status="Creating"), EndpointObserved(),
     [ConvergeKind("Instance"), MarkInService(1)]),
    ("serverless row: delegated to the serverless kind",
     endpoint(status="Creating", kind="Serverless"), EndpointObserved(),
     [ConvergeKind("Serverless"), MarkInService(1)]),
    ("InService: converge only, the status stays",
     endpoint(), EndpointObserved(held=True), [ConvergeKind("Instance")]),
    ("a converge failed: the endpoint is marked failed with the reason",
     endpoint(status="Creating"), EndpointObserved(held=True, failure="no model"),
     [MarkFailed("no model")]),
]


@pytest.mark.parametrize("case, desired, observed, expected", LIFECYCLE,
                         ids=[c[0] for c in LIFECYCLE])
def test_lifecycle(case: str, desired: Desired | None, observed: EndpointObserved,
                   expected: list[object]) -> None:
    assert plan(desired, observed) == expected
    assert plan(desired, observed) == expected  # the same inputs, the same plan


# -- instance-based variants ---------------------------------------------------------------

FLEET: list[tuple[str, Desired, FleetObserved, list[FleetAction]]] = [
    ("settled: nothing to do",
     endpoint(), seen(inst("a")), []),
    ("scale out: one of three running launches two, routed",
     endpoint(variant(count=3, current=1)), seen(inst("a")),
     [LaunchInstances("AllTraffic", "cfg", 2)]),
    ("scale out: an instance still starting counts as one",
     endpoint(variant(count=2, current=1)), seen(inst("a"), inst("b", state="Pending")), []),
    ("scale out: a draining instance does not count",
     endpoint(variant(count=1, current=0)), seen(inst("a", state="Draining")),
     [LaunchInstances("AllTraffic", "cfg", 1)]),
    ("scale in: the least busy, newest instances drain first",
     endpoint(variant(count=1, current=3)),
     seen(inst("old-busy", requested_at=0, in_flight=3), inst("mid", requested_at=10),
          inst("new", requested_at=20)),
     [RetireInstance("new"), RetireInstance("mid")]),
    ("weights: moved once the counts are right, and recorded",
     endpoint(variant("A", weight=3.0, current_weight=1.0), variant("B")),
     seen(inst("a", "A"), inst("b", "B"), route={"A": 1.0, "B": 1.0}),
     [UpdateRoutes((("A", 3.0),)),
      WriteObserved((ObservedVariant("A", 1, 3.0), ObservedVariant("B", 1, 1.0)))]),
    ("weights: not while a variant is still scaling",
     endpoint(variant("A", weight=3.0, current_weight=1.0), variant("B", count=2)),
     seen(inst("a", "A"), inst("b", "B"), route={"A": 1.0, "B": 1.0}),
     [LaunchInstances("B", "cfg", 1)]),
    ("restart: no route yet, one is made at the desired weights",
     endpoint(variant(count=0, current=0)), FleetObserved(100.0),
     [UpdateRoutes((("AllTraffic", 1.0),))]),
    ("observed: a count the row does not show yet is written",
     endpoint(variant(count=2, current=1)), seen(inst("a"), inst("b")),
     [WriteObserved((ObservedVariant("AllTraffic", 2, 1.0),))]),
    ("crash: an exited instance is reaped before anything else",
     endpoint(variant(count=2)), seen(inst("a", exit_code=3), inst("b")),
     [ReapExited("a", 3)]),
    ("crash: the replacement waits out the backoff",
     endpoint(variant(current=0, restart=BACKING_OFF)),
     seen(now=101.0, loops={"AllTraffic": LOOP}, restart={"AllTraffic": BACKING_OFF}),
     [WaitUntil(102.0)]),
    ("crash: after the backoff the replacement launches",
     endpoint(variant(current=0, restart=BACKING_OFF)),
     seen(now=102.0, loops={"AllTraffic": LOOP}, restart={"AllTraffic": BACKING_OFF}),
     [LaunchInstances("AllTraffic", "cfg", 1)]),
    ("crash: a variant backing off does not hold up another's scaling",
     endpoint(variant("A", current=0, restart=BACKING_OFF), variant("B", count=2, current=1)),
     seen(inst("b", "B"), now=101.0, route={"A": 1.0, "B": 1.0}, loops={"A": LOOP},
          restart={"A": BACKING_OFF}),
     [WaitUntil(102.0), LaunchInstances("B", "cfg", 1)]),
    ("scaling failed: give up with the launch's reason",
     endpoint(variant(count=2)), seen(inst("a"), inst("b"), failure="no /ping"),
     [GiveUp("no /ping")]),
    ("blue/green start: the new config's fleet launches unrouted",
     endpoint(pending="cfg2", pending_variants=(variant(count=2),), status="Updating"),
     seen(inst("a")),
     [LaunchInstances("AllTraffic", "cfg2", 2, routed=False)]),
    ("blue/green promote: traffic shifts at once, the old fleet retires",
     endpoint(pending="cfg2", pending_variants=(variant("New", weight=2.0),),
              status="Updating"),
     seen(inst("a"), inst("g", "New", fleet="cfg2")),
     [SwitchRoutes("cfg2", (("New", 2.0),)), RetireInstance("a", unroute=False),
      PromoteGreen("cfg2")]),
    ("blue/green revert: the new fleet failed, it retires and the old one serves on",
     endpoint(pending="cfg2", pending_variants=(variant(count=2),), status="Updating"),
     seen(inst("a"), inst("g", fleet="cfg2"), failure="no /ping"),
     [RetireInstance("g"), RevertUpdate("Updating the endpoint failed: no /ping")]),
]


@pytest.mark.parametrize("case, desired, observed, expected", FLEET, ids=[c[0] for c in FLEET])
def test_fleet(case: str, desired: Desired, observed: FleetObserved,
               expected: list[FleetAction]) -> None:
    assert plan_fleet(desired, observed) == expected
    assert plan_fleet(desired, observed) == expected  # planning twice changes nothing


HEALTH = [
    ("an exited instance is reaped",
     seen(inst("a", exit_code=137), inst("b")), [ReapExited("a", 137)]),
    ("a starting instance's exit is the launch's business",
     seen(inst("a", state="Pending", exit_code=1)), []),
    ("a loop whose variant served a minute since it came up ends",
     seen(inst("a", ready_at=103.0), now=163.0, loops={"AllTraffic": LOOP}),
     [EndCrashLoop("AllTraffic")]),
    ("a loop whose variant served only half a minute goes on",
     seen(inst("a", ready_at=103.0), now=133.0, loops={"AllTraffic": LOOP}), []),
]


@pytest.mark.parametrize("case, observed, expected", HEALTH, ids=[c[0] for c in HEALTH])
def test_health(case: str, observed: FleetObserved, expected: list[FleetAction]) -> None:
    assert plan_health(observed, POLICY) == expected


# -- a fake fleet: applying a plan leaves nothing to do ------------------------------------


@dataclass
class World:
    """The instance kind's effects without processes: launches serve at once."""

    desired: Desired
    observed: FleetObserved
    launched: int = 0

    def apply(self, actions: list[FleetAction]) -> None:
        d, o = self.desired, self.observed
        instances = list(o.instances)
        route = dict(o.route) if o.route is not None else None
        loops = dict(o.loops)
        for a in actions:
            if isinstance(a, LaunchInstances):
                for _ in range(a.count):
                    self.launched += 1
                    instances.append(inst(f"i{self.launched}", a.variant, fleet=a.fleet,
                                          requested_at=o.now, ready_at=o.now))
            elif isinstance(a, RetireInstance):
                instances = [i for i in instances if i.instance_id != a.instance_id]
            elif isinstance(a, ReapExited):
                gone = next(i for i in instances if i.instance_id == a.instance_id)
                instances.remove(gone)
                loops[gone.variant] = after_crash(loops.get(gone.variant), o.now, 0.5,
                                                  "exit.", POLICY)
            elif isinstance(a, UpdateRoutes):
                route = {**(route or {}), **dict(a.weights)}
            elif isinstance(a, SwitchRoutes):
                route = dict(a.weights)
            elif isinstance(a, PromoteGreen):
                d = replace(d, config_name=a.config_name, variants=d.pending_variants,
                            pending_config_name=None, pending_variants=(),
                            status="InService")
            elif isinstance(a, WriteObserved):
                by_name = {v.name: v for v in a.variants}
                d = replace(d, variants=tuple(
                    replace(v, current_count=by_name[v.name].instance_count,
                            current_weight=by_name[v.name].weight) for v in d.variants))
        self.desired = d
        self.observed = replace(o, instances=tuple(instances), route=route, loops=loops)

    def settle(self, rounds: int = 6) -> list[FleetAction]:
        """Plan and apply until the plan is empty or only waits; returns the last plan."""
        for _ in range(rounds):
            actions = plan_fleet(self.desired, self.observed)
            if all(isinstance(a, WaitUntil) for a in actions):
                return actions
            self.apply(actions)
        raise AssertionError(f"did not settle: {actions}")


CONVERGING = [
    ("scale out from nothing after a restart",
     endpoint(variant(count=3, current=0)), FleetObserved(0.0)),
    ("scale in", endpoint(variant(count=1, current=3)),
     seen(inst("a"), inst("b"), inst("c"))),
    ("new weights", endpoint(variant("A", weight=3.0, current_weight=1.0), variant("B")),
     seen(inst("a", "A"), inst("b", "B"), route={"A": 1.0, "B": 1.0})),
    ("blue/green from launch to promote",
     endpoint(pending="cfg2", pending_variants=(variant("New", count=2, current=0),),
              status="Updating"),
     seen(inst("a"), inst("b"))),
]


@pytest.mark.parametrize("case, desired, observed", CONVERGING, ids=[c[0] for c in CONVERGING])
def test_applying_the_plan_leaves_nothing_to_do(case: str, desired: Desired,
                                                observed: FleetObserved) -> None:
    world = World(desired, observed)
    assert world.settle() == []
    d = world.desired
    assert d.pending_config_name is None
    for v in d.variants:
        assert v.current_count == v.count == sum(
            1 for i in world.observed.instances if i.variant == v.name and i.fleet == d.config_name)
        assert world.observed.route is not None and world.observed.route[v.name] == v.weight


def test_a_crash_is_replaced_once_its_backoff_has_passed() -> None:
    """The clock marches: reap at 100 s, wait until 101 s (1 s backoff), launch at 101 s."""
    world = World(endpoint(), seen(inst("a", exit_code=3), now=100.0))
    assert world.settle() == [WaitUntil(101.0)]
    assert world.observed.instances == ()
    world.observed = replace(world.observed, now=100.5)
    assert plan_fleet(world.desired, world.observed) == [WaitUntil(101.0)]
    world.observed = replace(world.observed, now=101.0)
    assert world.settle() == []
    assert [i.instance_id for i in world.observed.instances] == ["i1"]
