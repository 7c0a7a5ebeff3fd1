"""Which instance of a multi-model variant serves a TargetModel: consistent hashing with bounded
load, so a fleet of N instances holds about N times one instance's cache instead of N copies.

Each model ranks the instances by a hash of (model, instance) — rendezvous hashing, the form of
consistent hashing that needs no ring: when an instance joins or leaves, only the models whose
first choice it was move. A request goes to the first instance in its model's ranking whose
requests in flight are under the bound

    bound = max(MIN_BOUND, ceil(LOAD_FACTOR * (in flight on the variant + 1) / instances))

(Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads"; the floor is
ours: below MIN_BOUND requests in flight, queueing behind a prediction costs less than loading
the model on another instance, so an idle fleet never spreads a model). Worked example:
3 instances, 8 requests in flight, LOAD_FACTOR 1.25: bound = ceil(1.25 * 9 / 3) = 4. A model
whose first instance already has 4 in flight spills to its second choice, which then loads it
too: a hot model spreads over more instances only while one cannot keep up, and always onto
the same few (its ranking is fixed), while cold models stay on their one instance.
"""

from __future__ import annotations

import hashlib
import math

from tideserve.serving.routes import Backend

LOAD_FACTOR = 1.25
MIN_BOUND = 4  # requests in flight an instance always takes for its own models


def _score(target: str, instance_id: str) -> bytes:
    return hashlib.blake2b(f"{instance_id}\0{target}".encode(), digest_size=8).digest()


def ranking(target: str, backends: list[Backend]) -> list[Backend]:
    """The reachable instances in `target`'s order of preference."""
    live = [b for b in backends if b.reachable]
    return sorted(live, key=lambda b: _score(target, b.instance_id), reverse=True)


def pick_for_model(target: str, backends: list[Backend],
                   exclude: set[str] | None = None) -> Backend | None:
    """The instance to send `target` to (see the module docstring); None when none is left."""
    ranked = [b for b in ranking(target, backends)
              if not exclude or b.instance_id not in exclude]
    if not ranked:
        return None
    in_flight = sum(b.in_flight for b in backends if b.reachable)
    bound = max(MIN_BOUND, math.ceil(LOAD_FACTOR * (in_flight + 1) / len(ranked)))
    return next((b for b in ranked if b.in_flight < bound), ranked[0])
