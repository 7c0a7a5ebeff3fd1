"""One transform job's run against a container contract served on loopback (a small ASGI
app standing in for the model container: the instance processes are the fleet's, covered by
tests/integration/test_transform_jobs.py), with the real job store and embedded object store:
order, payload limits, the failing record found, stop mid-run, and a resume that publishes a
staged output without transforming its object again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import serve_asgi
from tideserve.clock import WallClock
from tideserve.db import make_engine, sqlite_url
from tideserve.schema import create_all
from tideserve.serving.routes import Backend
from tideserve.transform.instances import EXITED, RECLAIMED, JobInstance
from tideserve.transform.jobs import JobStore
from tideserve.transform.objects import EmbeddedObjects
from tideserve.transform.runner import JobRun
from tideserve.transform.spec import TransformJobSpec


class Container:
    """POST /invocations: each line `x` answers `f(x)`; a line `bad` is a 400."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await asyncio.sleep(self.delay)
        lines = body.split(b"\n")
        status, out = 200, b"\n".join(b"f(" + line + b")" for line in lines)
        if b"bad" in lines:
            status, out = 400, b"could not parse 'bad'"
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": out})


class Fleet:
    """Instances that are the container above, at its URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started = 0

    async def start(self, spec: Any, job_arn: str, index: int) -> JobInstance:
        self.started += 1
        return JobInstance(f"i{index}", None, Backend(f"i{index}", self.url), None)  # type: ignore[arg-type]

    async def stop(self, inst: JobInstance, grace: float = 0.0) -> None:
        pass

    def spot_available(self, spec: Any) -> bool:
        return True

    def condition(self, inst: JobInstance) -> str | None:
        return None


class ReclaimedFleet(Fleet):
    """The first instance is a spot instance reclaimed 0.3 s after it started."""

    async def start(self, spec: Any, job_arn: str, index: int) -> JobInstance:
        inst = await super().start(spec, job_arn, index)
        inst.instance_id = f"i{self.started}"
        if self.started == 1:
            self.reclaim_at = time.monotonic() + 0.3
        return inst

    def condition(self, inst: JobInstance) -> str | None:
        gone = inst.instance_id == "i1" and time.monotonic() >= self.reclaim_at
        return RECLAIMED if gone else None

    def reclaim_at(self, inst: JobInstance) -> float | None:  # type: ignore[override]
        return 0.0

    async def halt(self, inst: JobInstance, grace: float) -> None:
        pass


class CrashedFleet(Fleet):
    """The first instance's process has exited: nothing answers at its URL."""

    async def start(self, spec: Any, job_arn: str, index: int) -> JobInstance:
        inst = await super().start(spec, job_arn, index)
        inst.instance_id = f"i{self.started}"
        if self.started == 1:
            inst.backend = Backend("i1", "http://127.0.0.1:9")  # discard port: refused
        return inst

    def condition(self, inst: JobInstance) -> str | None:
        return EXITED if inst.instance_id == "i1" else None


def request(name: str, **extra: Any) -> dict[str, Any]:
    return {"TransformJobName": name, "ModelName": "m",
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                               "S3Uri": "s3://inputs/p/"}},
                               "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": f"s3://outputs/{name}", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 2}, **extra}


@pytest.fixture
def world(tmp_path: Path):
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    objects = EmbeddedObjects(tmp_path / "s3")
    objects.store.create_bucket("inputs")
    return JobStore(engine), objects


def put(objects: EmbeddedObjects, key: str, lines: list[str]) -> None:
    objects.store.put_bytes("inputs", key, ("\n".join(lines) + "\n").encode())


def read(objects: EmbeddedObjects, uri: str) -> list[str]:
    with objects.open(uri) as f:
        return f.read().decode().splitlines()


def run(world, container: Container, req: dict[str, Any], *, stop_after: float | None = None,
        fleet_type: type[Fleet] = Fleet):
    store, objects = world
    with serve_asgi(container) as url:
        fleet = fleet_type(url)
        row = store.get(req["TransformJobName"]) or store.create(
            req["TransformJobName"], "arn:job", req, 0.0)
        job = JobRun(row, TransformJobSpec.parse(req), store, objects, fleet,  # type: ignore[arg-type]
                     WallClock())

        async def main() -> None:
            task = asyncio.create_task(job.run())
            if stop_after is not None:
                await asyncio.sleep(stop_after)
                job.stop()
            await task

        asyncio.run(main())
    return store.get(req["TransformJobName"]), fleet


def test_objects_over_two_instances_keep_their_order_under_the_payload_limit(world):
    store, objects = world
    lines = [f"{i:07d}" + "x" * 100 for i in range(30_000)]  # 3.2 MB
    put(objects, "p/big.csv", lines)
    put(objects, "p/small.csv", ["a", "b"])
    container = Container()
    job, _ = run(world, container, request("order", MaxPayloadInMB=1, MaxConcurrentTransforms=3))
    assert job.status == "Completed"
    assert read(objects, "s3://outputs/order/big.csv.out") == [f"f({x})" for x in lines]
    assert read(objects, "s3://outputs/order/small.csv.out") == ["f(a)", "f(b)"]
    assert max(len(b) for b in container.bodies) <= 1024 * 1024
    assert len(container.bodies) >= 4


def test_the_failing_record_of_a_mini_batch_is_named(world):
    store, objects = world
    put(objects, "p/x.csv", ["1", "2", "3", "4", "5", "bad", "7"])
    put(objects, "p/y.csv", ["ok"])
    job, _ = run(world, Container(), request("bad"))
    assert job.status == "Failed"
    assert job.failure_reason.startswith(
        "ClientError: s3://inputs/p/x.csv: record 6: Received client error (400)")
    assert read(objects, "s3://outputs/bad/y.csv.out") == ["f(ok)"]  # the other object stays
    assert objects.size("s3://outputs/bad/x.csv.out") is None


def test_stop_mid_run_publishes_nothing_more(world):
    store, objects = world
    for i in range(6):
        put(objects, f"p/{i}.csv", [str(i)])
    job, _ = run(world, Container(delay=0.3), request("stop", TransformResources={
        "InstanceType": "ml.m5.large", "InstanceCount": 1}), stop_after=0.5)
    assert job.status == "Stopped"
    published = [i for i in range(6) if objects.size(f"s3://outputs/stop/{i}.csv.out")]
    assert 1 <= len(published) < 6


def test_a_resumed_job_publishes_its_staged_output_and_redoes_only_unfinished_objects(world):
    store, objects = world
    for i in range(3):
        put(objects, f"p/{i}.csv", [str(i)])
    req = request("resume", TransformResources={"InstanceType": "ml.m5.large",
                                                "InstanceCount": 1})
    store.create("resume", "arn:job", req, 0.0)
    store.add_objects("resume", "s3://inputs/p/",
                      [(f"s3://inputs/p/{i}.csv", 2, 0) for i in range(3)])
    # As a killed server left it: 0 published, 1 complete in the temp area, 2 not begun.
    objects.store.create_bucket("outputs")
    objects.store.put_bytes("outputs", "resume/0.csv.out", b"done before\n")
    staged = objects.new_output()
    staged.write(b"staged before\n")
    staged.finish()
    store.mark("resume", 0, "done")
    store.mark("resume", 1, "staged", staged_path=str(staged.path))
    container = Container()
    job, _ = run(world, container, req)
    assert job.status == "Completed"
    assert read(objects, "s3://outputs/resume/0.csv.out") == ["done before"]
    assert read(objects, "s3://outputs/resume/1.csv.out") == ["staged before"]
    assert read(objects, "s3://outputs/resume/2.csv.out") == ["f(2)"]
    assert container.bodies == [b"2"]  # only the unfinished object was sent


def test_a_reclaimed_instance_gives_its_unfinished_object_to_a_replacement(world):
    store, objects = world
    inputs = {f"p/{i}.csv": [f"{i}-{n}" for n in range(8)] for i in range(4)}
    for key, lines in inputs.items():
        put(objects, key, lines)
    # One record per request, 0.1 s each: the first instance is mid-object at its reclaim.
    job, fleet = run(world, Container(delay=0.1), request("reclaim", BatchStrategy="SingleRecord"),
                     fleet_type=ReclaimedFleet)
    assert job.status == "Completed"
    assert fleet.started == 3  # two, and one replacement for the reclaimed one
    for key, lines in inputs.items():  # each row once, in order: the partial pass discarded
        assert read(objects, f"s3://outputs/reclaim/{key[2:]}.out") == [f"f({x})" for x in lines]
    assert {r.state for r in store.objects("reclaim")} == {"done"}


def test_an_instance_whose_process_exited_is_replaced_rather_than_failing_its_objects(world):
    store, objects = world
    for i in range(4):
        put(objects, f"p/{i}.csv", [str(i), f"{i}{i}"])
    job, fleet = run(world, Container(), request("crash"), fleet_type=CrashedFleet)
    assert job.status == "Completed", job.failure_reason
    assert fleet.started == 3
    for i in range(4):
        assert read(objects, f"s3://outputs/crash/{i}.csv.out") == [f"f({i})", f"f({i}{i})"]
