from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres_server import MISSING, postgres_bin, postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One PostgreSQL server per test session (worker); each test takes its own database."""
    if postgres_bin() is None:
        pytest.skip(MISSING)
    with postgres_server() as url:
        yield url
