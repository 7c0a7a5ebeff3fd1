"""The connection ledger's eviction rule: past a client's cap, its least recently used idle
connection makes room; busy ones are never evicted; a client whose every connection is busy
is refused; the overall cap evicts across clients the same way."""

from __future__ import annotations

from tideserve.api.http_guard import ConnectionLedger, EdgeLimits


class Conn:
    def __init__(self, ledger: ConnectionLedger, client: str, name: str) -> None:
        self.ledger, self.client, self.name = ledger, client, name
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True
        self.ledger.forget(self, self.client)


def open_conn(ledger: ConnectionLedger, client: str, name: str) -> Conn | None:
    conn = Conn(ledger, client, name)
    return conn if ledger.admit(conn, client) else None


def test_past_the_cap_the_least_recently_used_idle_connection_of_that_client_goes():
    ledger = ConnectionLedger(EdgeLimits(max_per_client=3))
    a, b, c = (open_conn(ledger, "10.0.0.1", n) for n in "abc")
    assert a and b and c
    # `a` completes a request: it is now the most recently used, so `b` is the oldest idle.
    ledger.mark_busy(a, "10.0.0.1")
    ledger.mark_idle(a, "10.0.0.1")
    d = open_conn(ledger, "10.0.0.1", "d")
    assert d is not None and b.evicted and not a.evicted and not c.evicted
    assert ledger.by_client["10.0.0.1"] == 3


def test_busy_connections_are_never_evicted_and_a_fully_busy_client_is_refused():
    ledger = ConnectionLedger(EdgeLimits(max_per_client=2))
    a, b = open_conn(ledger, "10.0.0.1", "a"), open_conn(ledger, "10.0.0.1", "b")
    assert a and b
    ledger.mark_busy(a, "10.0.0.1")
    ledger.mark_busy(b, "10.0.0.1")
    assert open_conn(ledger, "10.0.0.1", "c") is None
    assert not a.evicted and not b.evicted
    assert open_conn(ledger, "10.0.0.2", "other client") is not None  # others unaffected


def test_the_overall_cap_evicts_the_oldest_idle_connection_of_any_client():
    ledger = ConnectionLedger(EdgeLimits(max_per_client=10, max_total=2))
    a, b = open_conn(ledger, "10.0.0.1", "a"), open_conn(ledger, "10.0.0.2", "b")
    assert a and b
    c = open_conn(ledger, "10.0.0.3", "c")
    assert c is not None and a.evicted and not b.evicted
    assert ledger.total == 2
    for conn in (b, c):
        ledger.forget(conn, conn.client)
    assert ledger.total == 0 and not ledger.by_client and not ledger.idle_by_client
