"""A follower's routes come from the shared instance table; the leader's watch hands each
endpoint whose desired state another server changed to its controller."""

from __future__ import annotations

from tideserve.cluster.follow import EndpointWatch, refresh_routes
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.db import make_engine
from tideserve.schema import create_all
from tideserve.serving.routes import RouteTable


def store_with_endpoint(tmp_path) -> ControlStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'db'}")
    create_all(engine)
    store = ControlStore(engine)
    store.insert_endpoint(EndpointRow(
        name="Shared", arn="arn:e", config_name="c", pending_config_name=None,
        status="InService", failure_reason=None, creation_time=0.0, last_modified_time=0.0,
        variants=[{"VariantName": "A", "CurrentWeight": 2.0, "DesiredInstanceCount": 1}]))
    return store


def instance(store: ControlStore, instance_id: str, serving: bool) -> None:
    store.record_instance(instance_id=instance_id, endpoint_name="Shared", variant_name="A",
                          pid=1, url=f"http://127.0.0.1/{instance_id}", start_time=0.0,
                          token="t-" + instance_id)
    if serving:
        store.instance_serving(instance_id)


def test_a_follower_routes_to_serving_instances_and_keeps_their_in_flight_counts(tmp_path):
    store, routes = store_with_endpoint(tmp_path), RouteTable()
    instance(store, "i-1", serving=True)
    instance(store, "i-2", serving=False)  # still starting: not yet routed
    refresh_routes(routes, store)
    route = routes.get("shared")
    assert route is not None and route.name == "Shared"
    (variant,) = route.variants
    assert (variant.name, variant.weight) == ("A", 2.0)
    assert [(b.instance_id, b.token) for b in variant.backends] == [("i-1", "t-i-1")]
    variant.backends[0].in_flight = 3

    store.instance_serving("i-2")
    refresh_routes(routes, store)
    backends = {b.instance_id: b for b in routes.get("shared").variants[0].backends}
    assert set(backends) == {"i-1", "i-2"} and backends["i-1"].in_flight == 3

    store.forget_instance("i-1")
    store.forget_instance("i-2")
    refresh_routes(routes, store)
    assert routes.get("shared") is None


def test_the_watch_notifies_desired_changes_not_the_controllers_own_writes(tmp_path):
    store, seen = store_with_endpoint(tmp_path), []
    watch = EndpointWatch(store, seen.append)
    assert watch.poll() == []  # the first poll only learns what is there

    def observed(row: EndpointRow) -> bool:
        row.variants[0]["CurrentInstanceCount"] = 1
        return True

    store.modify_endpoint("Shared", observed)
    assert watch.poll() == []

    def scaled(row: EndpointRow) -> bool:
        row.variants[0]["DesiredInstanceCount"] = 2
        return True

    store.modify_endpoint("Shared", scaled)
    assert watch.poll() == ["Shared"] and seen == ["Shared"]
