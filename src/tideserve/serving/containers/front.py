"""The instance process of a multi-container model: a small front over one model server per
container, all of them processes of this one instance.

    python -m tideserve.serving.containers.front --port P [--host 127.0.0.1] [--threads N]
        [--trust-pickle] [--max-payload-mb 6] [--max-async-payload-mb 1024]

The containers come in the environment (plan.py, `TIDESERVE_CONTAINERS`). Each is started as
`python -m tideserve.serving.instance` (or its own TIDESERVE_SERVE_COMMAND) on a loopback
port of its own, with its own Environment, `SAGEMAKER_BIND_TO_PORT` and token; its output
goes to a file of its own in the directory the fleet names (`TIDESERVE_CONTAINER_LOG_DIR`,
ingested as the log stream `<variant>/<instance-id>/<hostname>`, as SageMaker gives each
pipeline container), else to this instance's log with each line prefixed `[hostname]`.
The front traces as an instance does (tracing/instance.py) and hands each container the
same exporter settings, so a container's spans nest under the front's hop to it
(chain.py). The front opens its port
only once every container answers /ping, so a 200 from the front's /ping means all are ready,
and a container that exits before it is ready stops the instance with exit status 1 and a
last log line naming it (the endpoint's FailureReason).

Started and stopped together: a container that exits while the instance serves stops the
others and the front (status 1), so the fleet replaces the whole instance, as SageMaker
replaces an instance whose container failed. SIGTERM stops the front accepting, lets requests
in flight finish, then stops the containers (SIGTERM, SIGKILL after a grace). The containers
run in a process group of their own, so the SIGTERM the fleet sends the instance's group does
not reach them before the front has drained; they are asked to die with the front
(PR_SET_PDEATHSIG), so a front killed outright leaves none behind. The instance's CPU and
memory metrics sample the front's process tree, containers included.

Sharing the instance: every container gets the instance's prediction threads (in a pipeline
they take turns on a request; with direct invocation they compete, as containers on one
SageMaker instance do), and each inherits the instance's address-space limit on its own (a
limit per process, not their sum). Containers start cold, not from warm spares (fleet/local.py),
all at once.

Why a front in the instance and not the router driving the chain: the router, the async
dispatcher and batch transform all reach an instance through one URL and one contract, and
keep doing so; the pipeline's hops stay on the instance's loopback (as on SageMaker, where
the containers share the instance), and "a container crashed" is an instance that exited,
which the fleet already knows how to replace. The price is one more loopback hop per request
than a router-driven chain (bench figure in the branch note).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tideserve.serving.containers.plan import (
    LOG_DIR_ENV,
    PLAN_ENV,
    ContainerPlan,
    ContainerProcess,
    container_log,
)
from tideserve.serving.instance_token import TOKEN_ENV, new_token, take_token
from tideserve.serving.routes import Backend
from tideserve.tracing.instance import ENDPOINT_ENV as TRACES_ENDPOINT_ENV
from tideserve.tracing.instance import TOKEN_ENV as TRACES_TOKEN_ENV
from tideserve.tracing.instance import setup_instance_tracing

log = logging.getLogger("tideserve.front")

STARTUP_TIMEOUT_SECONDS = 240.0  # as the controller's health-check window
STOP_GRACE_SECONDS = 20.0
FAILED_PEERS_SECONDS = 1.0  # after one container failed to start, how long others may too
HOP_TIMEOUT_SECONDS = 3600.0  # the caller's deadline (X-Tideserve-Model-Timeout) is the limit
_PR_SET_PDEATHSIG = 1
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+ ")


class StartFailed(Exception):
    pass


def _child_setup() -> None:  # in the container's process, before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setpgid(0, 0)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Container:
    """One container's process, its port, token and log lines."""

    def __init__(self, spec: ContainerProcess, host: str,
                 shared_env: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.host = host
        self.shared_env = shared_env or {}  # what the front took out of its environment
        self.port = _free_port(host)
        self.token = new_token()
        self.proc: asyncio.subprocess.Process | None = None
        self.last_error = ""
        self._pump: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.hostname

    @property
    def backend(self) -> Backend:
        return Backend(self.name, f"http://{self.host}:{self.port}", token=self.token)

    def command(self, args: argparse.Namespace) -> list[str]:
        model_dir = str(self.spec.model_dir)
        if self.spec.command:
            return shlex.split(self.spec.command.format(port=self.port, model_dir=model_dir))
        argv = [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", model_dir,
                "--runtime", self.spec.runtime, "--host", self.host, "--port", str(self.port),
                "--threads", str(args.threads), "--max-payload-mb", str(args.max_payload_mb),
                "--max-async-payload-mb", str(args.max_async_payload_mb)]
        return argv + (["--trust-pickle"] if args.trust_pickle else [])

    async def start(self, args: argparse.Namespace) -> None:
        env = {**os.environ, **self.shared_env, **self.spec.environment,
               "SAGEMAKER_BIND_TO_PORT": str(self.port), TOKEN_ENV: self.token,
               "TIDESERVE_CONTAINER_HOSTNAME": self.name}
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(args), cwd=self.spec.model_dir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, preexec_fn=_child_setup)
        self._pump = asyncio.create_task(self._copy_output())

    async def _copy_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        log_dir = os.environ.get(LOG_DIR_ENV)
        if log_dir:  # its own file, its own log stream: no prefix needed
            os.makedirs(log_dir, exist_ok=True)
            out: Any = open(container_log(Path(log_dir), self.name), "ab")  # noqa: SIM115
            prefix = b""
        else:
            out, prefix = sys.stdout.buffer, f"[{self.name}] ".encode()
        try:
            await self._copy_lines(out, prefix)
        finally:
            if log_dir:
                out.close()

    async def _copy_lines(self, out: Any, prefix: bytes) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            out.write(prefix + line)
            out.flush()
            text = line.decode(errors="replace").strip()
            if "error" in text.lower():  # for the FailureReason, less the log's timestamp
                self.last_error = _TIMESTAMP.sub("", text)[:400]

    async def wait_ready(self, http: Any, deadline: float) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        delay = 0.02
        while loop.time() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                await self.drained()
                raise StartFailed(f"container {self.name} exited with status "
                                  f"{self.proc.returncode} before it was ready. {self.last_error}")
            try:
                async with http.get(f"{self.backend.url}/ping") as resp:
                    if resp.status == 200:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 1.5)
        raise StartFailed(f"container {self.name} did not answer /ping within "
                          f"{STARTUP_TIMEOUT_SECONDS:.0f} seconds.")

    async def drained(self) -> None:
        """Its output copied to the end (it has exited)."""
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 2.0)

    async def stop(self, grace: float) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        await self.drained()


async def start_all(containers: list[Container], args: argparse.Namespace) -> None:
    import aiohttp

    for c in containers:
        await c.start(args)
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http:
        tasks = [asyncio.ensure_future(c.wait_ready(http, deadline)) for c in containers]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if pending:  # one failed: the instance will not serve, so stop waiting for the rest,
            # after a moment in which another that is failing too can say so
            more, pending = await asyncio.wait(pending, timeout=FAILED_PEERS_SECONDS)
            done |= more
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    failures = [exc for exc in (t.exception() for t in done) if exc is not None]
    for failure in failures:
        if not isinstance(failure, StartFailed):
            raise failure
    if failures:  # every container that failed, as SageMaker lists them
        raise StartFailed(" ".join(str(f) for f in failures))


async def first_exit(containers: list[Container]) -> Container:
    waits = {asyncio.ensure_future(c.proc.wait()): c for c in containers if c.proc is not None}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return waits[next(iter(done))]


async def run(plan: ContainerPlan, args: argparse.Namespace, token: str | None,
              shared_env: dict[str, str] | None = None) -> int:
    import uvicorn

    from tideserve.serving.containers.chain import FrontApp
    from tideserve.serving.instance_client import InstanceClient

    containers = [Container(spec, args.host, shared_env) for spec in plan.containers]
    try:
        await start_all(containers, args)
    except StartFailed as exc:
        log.error("cannot start the instance: %s", exc)
        await asyncio.gather(*(c.stop(2.0) for c in containers))
        return 1
    # Only now, with every container started: the exporter's thread and its fork hooks
    # must not be there while a container's process forks (its preexec_fn would hang).
    setup_instance_tracing({**os.environ, **(shared_env or {})})
    client = InstanceClient(HOP_TIMEOUT_SECONDS)
    app = FrontApp(plan, {c.name: c.backend for c in containers}, client, args.threads,
                   int(args.max_payload_mb * 2**20), int(args.max_async_payload_mb * 2**20),
                   token)
    server = uvicorn.Server(_config(app, args))
    serving = asyncio.create_task(server.serve())
    exited = asyncio.create_task(first_exit(containers))
    log.info("serving %s containers (%s) on http://%s:%d", plan.mode,
             ", ".join(plan.hostnames), args.host, args.port)
    await asyncio.wait({serving, exited}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if exited.done():
        gone = exited.result()
        await gone.drained()
        assert gone.proc is not None
        log.error("container %s exited with status %s while serving; stopping the instance so "
                  "that it is replaced. %s", gone.name, gone.proc.returncode, gone.last_error)
        server.should_exit = True
        code = 1
        await serving
    else:
        exited.cancel()
    await asyncio.gather(*(c.stop(STOP_GRACE_SECONDS) for c in containers))
    await client.close()
    return code


def _config(app: Any, args: argparse.Namespace) -> Any:
    import uvicorn

    from tideserve.serving.instance import _available

    return uvicorn.Config(
        app, host=args.host, port=args.port, loop="none",
        http=_available("httptools", "h11"), lifespan="off", access_log=False,
        log_level="warning", timeout_keep_alive=75, server_header=False, date_header=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tideserve.serving.containers.front",
                                     description=__doc__)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trust-pickle", action="store_true")
    parser.add_argument("--max-payload-mb", type=float, default=6.0)
    parser.add_argument("--max-async-payload-mb", type=float, default=1024.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    raw = os.environ.pop(PLAN_ENV, None)
    if not raw:
        log.error("no %s in the environment: nothing to serve", PLAN_ENV)
        return 2
    plan = ContainerPlan.decode(raw)
    token = take_token()
    # The exporter's settings: the containers get them, and the front's own provider once
    # they have started (run()).
    tracing_env = {k: os.environ.pop(k) for k in (TRACES_ENDPOINT_ENV, TRACES_TOKEN_ENV)
                   if k in os.environ}
    # uvicorn re-raises SIGTERM after its graceful shutdown; a no-op handler makes that a
    # clean return (as serving/instance.py does).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    runner: Any = asyncio.run
    try:  # the loop the single-container instance runs on, where it is installed
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    return int(runner(run(plan, args, token, tracing_env)))


if __name__ == "__main__":
    sys.exit(main())
