"""What a server that shares its database does, leader or not.

A follower routes to the instances the leader started: it rebuilds its route table from the
shared instance table (URL, token, serving) and the endpoint rows' CurrentWeight. The leader
notices the changes a follower's API recorded: its controller is woken by the API of its own
process only, so it polls the endpoint rows for what a reconcile acts on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tideserve.control.store import ControlStore, EndpointRow
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable, VariantRoute


def refresh_routes(routes: RouteTable, store: ControlStore) -> None:
    """Make `routes` route to every serving instance in the shared table; backends that stay
    keep their counts of requests in flight."""
    by_endpoint: dict[str, dict[str, list[Any]]] = {}
    for inst in store.recorded_instances():
        if inst.serving:
            by_endpoint.setdefault(inst.endpoint_name.lower(), {}).setdefault(
                inst.variant_name, []).append(inst)
    rows = {row.name.lower(): row for row in store.list_endpoints()}
    for key in list(routes.endpoints):
        if key not in by_endpoint or key not in rows:
            routes.remove(key)
    for key, variants in by_endpoint.items():
        row = rows.get(key)
        if row is None:
            continue
        old = routes.get(key)
        known = {b.instance_id: b for v in (old.variants if old else []) for b in v.backends}
        weights = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in row.variants}
        routes.put(EndpointRoute(row.name, [
            VariantRoute(name, weights.get(name, 1.0), [
                known.get(i.instance_id) or Backend(i.instance_id, i.url, token=i.token)
                for i in instances])
            for name, instances in variants.items()
        ]))


def _fingerprint(row: EndpointRow) -> str:
    """What an API call changes and a reconcile acts on (not the Current* fields the
    controller writes back)."""
    desired = [(v.get("VariantName"), v.get("DesiredInstanceCount"), v.get("DesiredWeight"),
                v.get("InitialInstanceCount"), v.get("InitialVariantWeight"))
               for v in row.variants]
    return json.dumps([row.generation, row.status, row.config_name, row.pending_config_name,
                       desired], default=str)


class EndpointWatch:
    """The leader's poll of the endpoint rows: each endpoint whose desired state changed since
    the last poll (or that appeared or went) is handed to `notify`."""

    def __init__(self, store: ControlStore, notify: Callable[[str], None]) -> None:
        self.store = store
        self.notify = notify
        self._seen: dict[str, str] | None = None

    def poll(self) -> list[str]:
        now = {row.name: _fingerprint(row) for row in self.store.list_endpoints()}
        changed: list[str] = []
        if self._seen is not None:
            changed = [name for name, fp in now.items() if self._seen.get(name) != fp]
            changed += [name for name in self._seen if name not in now]
        self._seen = now
        for name in changed:
            self.notify(name)
        return changed
