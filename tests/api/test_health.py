"""What GET /healthz answers in each phase of a server's life."""

from __future__ import annotations

import pytest

from tideserve.api.health import Readiness, health


@pytest.mark.parametrize(("started", "readiness", "expected"), [
    pytest.param(False, Readiness(), (503, {"status": "starting"}), id="starting"),
    pytest.param(True, Readiness(recovering=("durable",), not_serving=("durable",)),
                 (503, {"status": "recovering", "recovering": ["durable"]}),
                 id="restored endpoints not back yet: not ready"),
    pytest.param(True, Readiness(not_serving=("kamikaze",)),
                 (200, {"status": "degraded", "notServing": ["kamikaze"]}),
                 id="one endpoint crash-looping: ready, and says which cannot serve"),
    pytest.param(True, Readiness(), (200, {"status": "ok"}), id="all serving"),
])
def test_healthz(started, readiness, expected):
    assert health(started, readiness) == expected
