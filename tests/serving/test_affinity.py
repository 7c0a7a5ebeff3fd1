"""Where a multi-model request goes: the same instance for the same model, a spill to the next
in its ranking only past the load bound, and few models moving when an instance leaves."""

from __future__ import annotations

from tideserve.serving.affinity import pick_for_model, ranking
from tideserve.serving.routes import Backend


def fleet(n: int) -> list[Backend]:
    return [Backend(f"i-{k}", f"http://127.0.0.1:{9000 + k}", multi_model=True)
            for k in range(n)]


def test_a_model_always_goes_to_the_same_idle_instance() -> None:
    backends = fleet(3)
    picks = {pick_for_model("client-017.tar.gz", backends).instance_id for _ in range(20)}
    assert len(picks) == 1


def test_models_spread_over_the_instances() -> None:
    backends = fleet(3)
    owners = [pick_for_model(f"client-{k:03}.tar.gz", backends).instance_id for k in range(300)]
    counts = sorted(owners.count(b.instance_id) for b in backends)
    assert counts[0] > 60  # about 100 each


def test_a_busy_first_choice_spills_to_the_second_in_the_models_ranking() -> None:
    backends = fleet(3)
    first, second, _ = ranking("hot.tar.gz", backends)
    first.in_flight = 4  # the bound: max(4, ceil(1.25 * 5 / 3) = 3) = 4
    assert pick_for_model("hot.tar.gz", backends) is second
    first.in_flight = 3
    assert pick_for_model("hot.tar.gz", backends) is first


def test_when_an_instance_leaves_only_its_models_move() -> None:
    backends = fleet(4)
    before = {f"m{k}": pick_for_model(f"m{k}", backends).instance_id for k in range(200)}
    backends[3].reachable = False
    after = {m: pick_for_model(m, backends).instance_id for m in before}
    moved = [m for m in before if before[m] != after[m]]
    assert all(before[m] == "i-3" for m in moved)


def test_the_bound_grows_with_the_fleets_load() -> None:
    backends = fleet(2)
    first, second = ranking("hot.tar.gz", backends)
    first.in_flight, second.in_flight = 6, 5  # bound: ceil(1.25 * 12 / 2) = 8
    assert pick_for_model("hot.tar.gz", backends) is first
