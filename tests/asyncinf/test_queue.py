"""The durable queue: leases, fencing, recovery after a crash, TTL expiry, backlog counts."""

from __future__ import annotations

from tests.asyncinf.conftest import request
from tideserve.asyncinf.queue import LEASE_MARGIN_SECONDS, AsyncQueue


def test_requests_are_claimed_oldest_first_each_with_a_lease(queue, clock):
    queue.enqueue(request("b", clock.now() + 1))
    queue.enqueue(request("a", clock.now()))
    first = queue.claim("ep", clock.now())
    assert first is not None and first.id == "a"
    assert first.state == "processing" and first.attempts == 1
    # The lease covers the invocation timeout plus a margin for reading and writing objects.
    assert first.lease_until == clock.now() + 900 + LEASE_MARGIN_SECONDS
    assert queue.claim("ep", clock.now()).id == "b"
    assert queue.claim("ep", clock.now()) is None  # nothing left: both are taken


def test_a_claim_only_sees_its_own_endpoint(queue, clock):
    queue.enqueue(request("x", clock.now(), endpoint="other"))
    assert queue.claim("ep", clock.now()) is None
    assert queue.claim("other", clock.now()).id == "x"


def test_a_finished_request_is_done_once_and_a_stale_attempt_cannot_finish_it(queue, clock):
    queue.enqueue(request("a", clock.now()))
    first = queue.claim("ep", clock.now())
    assert queue.release(first)  # its instance vanished: back in the queue
    second = queue.claim("ep", clock.now())
    assert second.attempts == 2
    # The first attempt's late answer is fenced out; the second one counts.
    assert not queue.finish(first, "done", clock.now())
    assert queue.finish(second, "done", clock.now())
    assert queue.get("a").state == "done"
    assert queue.get("a").body is None  # an inline payload is not kept once answered
    assert not queue.finish(second, "failed", clock.now())  # finished is final


def test_a_restart_requeues_every_request_that_was_being_processed(engine, queue, clock):
    for rid in ("a", "b", "c"):
        queue.enqueue(request(rid, clock.now()))
    queue.claim("ep", clock.now())
    done = queue.claim("ep", clock.now())
    queue.finish(done, "done", clock.now())
    # The server is killed here. A new process opens the same database:
    restarted = AsyncQueue(engine)
    assert restarted.recover() == 1
    assert restarted.states("ep") == {"queued": 2, "done": 1}
    again = restarted.claim("ep", clock.now())
    assert (again.id, again.attempts) == ("a", 2)  # processed again, known as a 2nd attempt


def test_a_lease_that_runs_out_while_the_server_lives_is_requeued(queue, clock):
    queue.enqueue(request("a", clock.now(), timeout=10))
    queue.claim("ep", clock.now())
    clock.advance(10 + LEASE_MARGIN_SECONDS - 1)
    assert queue.requeue_lost(clock.now()) == 0  # still within 10 s + margin
    clock.advance(2)
    assert queue.requeue_lost(clock.now()) == 1
    assert queue.get("a").state == "queued"


def test_requests_past_their_ttl_are_taken_for_expiry_and_others_stay(queue, clock):
    queue.enqueue(request("old", clock.now(), ttl=60))
    queue.enqueue(request("young", clock.now() + 30, ttl=60))
    clock.advance(60)
    assert queue.claim_expired(clock.now()) == []  # exactly 60 s old: not yet past
    clock.advance(1)
    expired = queue.claim_expired(clock.now())
    assert [r.id for r in expired] == ["old"]
    assert expired[0].expired(clock.now())
    assert queue.finish(expired[0], "expired", clock.now(), "Request expired")
    assert queue.states("ep") == {"expired": 1, "queued": 1}


def test_backlog_counts_queued_and_processing_with_the_oldest_arrival(queue, clock):
    t0 = clock.now()
    for i, rid in enumerate(("a", "b", "c")):
        queue.enqueue(request(rid, t0 + i))
    first = queue.claim("ep", t0 + 5)
    queue.finish(first, "done", t0 + 6)  # a is answered: not backlog any more
    queue.claim("ep", t0 + 7)  # b is in processing: still backlog
    backlog = queue.backlogs()["ep"]
    assert (backlog.size, backlog.oldest_enqueued_at) == (2, t0 + 1)
    assert queue.has_queued("ep")


def test_a_new_endpoint_with_an_old_name_starts_with_an_empty_queue(queue, endpoints, clock):
    from tests.asyncinf.conftest import OUTPUT

    endpoints.created("Ep", OUTPUT)
    queue.enqueue(request("a", clock.now()))
    endpoints.deleted("Ep")
    assert queue.backlogs() == {}
    assert not endpoints.is_async("ep")
