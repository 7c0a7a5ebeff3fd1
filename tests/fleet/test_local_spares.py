"""The local fleet hands the next instance of a kind to a warm spare: an interpreter that has
imported the runtime (serving/spare.py). The instance it becomes is still its own process,
in its model directory, guarded by its own token, logging to its own log; a model whose
Environment reaches import-time settings starts cold; no spare outlives the provider."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tideserve.cost.catalog import Catalog
from tideserve.fleet.base import InstanceHandle, InstanceSpec
from tideserve.fleet.local import LocalProcessProvider
from tideserve.fleet.readiness import wait_until_ready
from tideserve.serving.instance_token import token_header

pytestmark = pytest.mark.integration


def spec(model_dir: Path, n: int, environment: dict[str, str] | None = None) -> InstanceSpec:
    return InstanceSpec(f"i-{n}", "ep", "AllTraffic", Catalog.default().get("ml.m5.large"),
                        model_dir, "sklearn", environment or {})


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def alive(pid: int) -> bool:
    fields = stat(pid)
    return bool(fields) and fields[0] != "Z"


def my_spares() -> list[int]:
    """Live children of this process that are spares."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [p for p in pids if alive(p) and stat(p)[1] == str(os.getpid())
            and "tideserve.serving.spare" in cmdline(p)]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[LocalProcessProvider, Path]]:
    provider = LocalProcessProvider(tmp_path / "logs")
    try:
        yield provider, builders.sklearn_dir(tmp_path / "model")
    finally:
        provider.stop_all_now()


async def started(provider: LocalProcessProvider, s: InstanceSpec) -> InstanceHandle:
    handle = await provider.start(s)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        await wait_until_ready(provider, handle, http, 120)
    return handle


def test_the_second_instance_of_a_kind_is_a_warm_spare_with_its_own_token_and_log(
    fleet: tuple[LocalProcessProvider, Path],
) -> None:
    asyncio.run(second_instance_is_a_spare(*fleet))


async def second_instance_is_a_spare(provider: LocalProcessProvider, model_dir: Path) -> None:
    model, X = iris()
    first = await started(provider, spec(model_dir, 1))
    assert "tideserve.serving.instance" in cmdline(first.pid)  # nothing warm yet
    second = await started(provider, spec(model_dir, 2))
    assert "tideserve.serving.spare" in cmdline(second.pid)
    assert second.pid != first.pid and second.token != first.token
    assert Path(f"/proc/{second.pid}/cwd").resolve() == model_dir.resolve()
    body = csv_rows(X[:3])
    url = second.url + "/invocations"
    async with httpx.AsyncClient(timeout=30) as client:
        refused = await client.post(url, content=body, headers={"Content-Type": "text/csv"})
        wrong = await client.post(url, content=body, headers={
            "Content-Type": "text/csv", **token_header(first.token)})
        served = await client.post(url, content=body, headers={
            "Content-Type": "text/csv", **token_header(second.token)})
    assert (refused.status_code, wrong.status_code) == (403, 403)
    assert served.json() == model.predict(X[:3]).tolist()
    assert f":{second.url.rsplit(':', 1)[1]}" in second.log_path.read_text()  # "serving on"
    await provider.stop(second, 5)
    assert not alive(second.pid)


def test_an_import_time_setting_starts_cold_and_spares_end_with_the_provider(
    fleet: tuple[LocalProcessProvider, Path],
) -> None:
    asyncio.run(import_time_setting_starts_cold(*fleet))


async def import_time_setting_starts_cold(provider: LocalProcessProvider,
                                          model_dir: Path) -> None:
    first = await started(provider, spec(model_dir, 1))
    tuned = await started(provider, spec(model_dir, 2, {"OMP_WAIT_POLICY": "PASSIVE"}))
    assert "tideserve.serving.instance" in cmdline(tuned.pid)
    spares = my_spares()
    assert len(spares) == 1  # made after the first start, waiting (the cold one makes none)
    provider.stop_all_now()
    assert not any(alive(pid) for pid in [first.pid, tuned.pid, *spares])
