"""Instances as local OS processes, one per instance, each on its own loopback port.

The instance type sets the process's numeric threads (its vCPUs, capped at this machine's
cores) and, where the OS allows, an address-space limit from its memory. Children are asked to
die with the server (PR_SET_PDEATHSIG), so a killed server leaves no orphans serving stale
models.

Warm spares (serving/spare.py): importing the framework is most of an instance's start, so
after starting an instance of a kind (runtime, threads, lean or not) the provider starts one
spare of that kind, an interpreter that has imported the runtime and waits; the next instance
of that kind (a scale-out, a replacement) is handed to it and serves as soon as its model
loads, and another spare is started behind it. At most one spare per kind, each a process
like an instance (own process group, dies with the server). A model whose Environment sets
variables that libraries read when they are imported (PYTHON*, LD_*, OMP_*, MKL_*, ...) is
always started cold, since a spare has imported them already. `warm_spares=False` turns it
off.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from tideserve.fleet.base import InstanceHandle, InstanceSpec
from tideserve.serving.containers.plan import LOG_DIR_ENV, PLAN_ENV, container_log
from tideserve.serving.instance_token import new_token

# Read when the interpreter starts or a numeric library is imported: a spare has done both.
_IMPORT_TIME_ENV = (
    "PYTHON", "LD_", "MALLOC_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "GOTO", "BLIS_",
    "NUMEXPR_", "VECLIB_", "NUMPY_", "SCIPY_", "SKLEARN_", "JOBLIB_", "XGBOOST", "ORT_",
    "TORCH", "PYTORCH_", "CUDA", "LC_", "LANG", "TZ",
)
_PICKLES = (".pkl", ".pickle", ".joblib")
SpareKind = tuple[str, int, bool]  # runtime, threads, lean (runtimes.loader.import_runtime)

_PR_SET_PDEATHSIG = 1
# Python, numpy and the frameworks reserve far more address space than they touch, so the
# limit leaves headroom over the type's memory rather than cutting exactly at it.
_ADDRESS_SPACE_HEADROOM = 4 * 2**30


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _child_setup(memory_bytes: int | None) -> None:  # runs in the child before exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    # Own process group (same session): a signal to it reaches a user's server and its children.
    os.setpgid(0, 0)
    if memory_bytes:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        except (ValueError, OSError):
            pass


class LogObserver(Protocol):
    """Told when an instance's output file opens and when its writer stops (tideserve.logs
    ingests the file into the instance's log stream; the wiring sets it)."""

    def opened(self, spec: InstanceSpec, path: Path) -> None: ...

    def container_opened(self, spec: InstanceSpec, container: str, path: Path) -> None:
        """A pipeline container's own output file (the front writes one per container)."""

    def closed(self, path: Path) -> None: ...


class LocalProcessProvider:
    def __init__(self, log_dir: Path, host: str = "127.0.0.1", limit_memory: bool = True,
                 warm_spares: bool = True) -> None:
        self.log_dir = log_dir
        self.host = host
        self.limit_memory = limit_memory
        self.warm_spares = warm_spares
        self.log_observer: LogObserver | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._spares: dict[SpareKind, subprocess.Popen[bytes]] = {}

    async def start(self, spec: InstanceSpec) -> InstanceHandle:
        # The instance's working directory is its model directory, so the path it is given
        # must not be relative to ours.
        model_dir = Path(spec.model_dir).resolve()
        port = free_port(self.host)
        threads = max(1, min(spec.instance_type.vcpu, os.cpu_count() or 1))
        env = {**os.environ, **spec.environment}
        token = new_token()  # in the environment, not argv: `ps` shows argv to every user
        env.update(
            SAGEMAKER_BIND_TO_PORT=str(port),
            TIDESERVE_INSTANCE_ID=spec.instance_id,
            TIDESERVE_INSTANCE_TOKEN=token,
            # What the instance may hold (a multi-model instance sizes its cache from it).
            TIDESERVE_INSTANCE_MEMORY_BYTES=str(int(spec.instance_type.memory_gib * 2**30)),
            PYTHONUNBUFFERED="1",
        )
        argv = [
            "--model-dir", str(model_dir), "--runtime", spec.runtime,
            "--host", self.host, "--port", str(port), "--threads", str(threads),
        ]
        if spec.trust_pickle:
            argv.append("--trust-pickle")
        memory = int(spec.instance_type.memory_gib * 2**30) + _ADDRESS_SPACE_HEADROOM
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.instance_id}.log"
        if spec.containers is not None:  # the front starts one process per container
            env[PLAN_ENV] = spec.containers.encode()
            env[LOG_DIR_ENV] = str(self._container_log_dir(spec))
        kind = (None if spec.command or spec.containers is not None
                else _spare_kind(spec, model_dir, threads))
        proc = None
        if kind is not None and self.warm_spares:
            proc = await self._hand_to_spare(kind, argv, env, model_dir, log_path,
                                             memory if self.limit_memory else None)
        if proc is None:
            if spec.containers is not None:
                command = [sys.executable, "-m", "tideserve.serving.containers.front",
                           *argv[argv.index("--host"):]]
            elif spec.command:
                command = shlex.split(spec.command.format(port=port, model_dir=model_dir))
            else:
                command = [sys.executable, "-m", "tideserve.serving.instance", *argv]
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    command, cwd=model_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=lambda: _child_setup(memory if self.limit_memory else None),
                )
        if kind is not None and self.warm_spares:
            self._start_spare(kind)  # for the next instance of this kind
        self._procs[spec.instance_id] = proc
        if self.log_observer is not None:
            self.log_observer.opened(spec, log_path)
            for name, path in self._container_logs(spec).items():
                self.log_observer.container_opened(spec, name, path)
        return InstanceHandle(
            spec=spec, url=f"http://{self.host}:{port}", pid=proc.pid, log_path=log_path,
            started_at=time.time(), token=token,
        )

    async def _hand_to_spare(self, kind: SpareKind, argv: list[str], env: dict[str, str],
                             model_dir: Path, log_path: Path, memory: int | None
                             ) -> subprocess.Popen[bytes] | None:
        """The spare of `kind`, told to become this instance; None when there is none."""
        spare = self._spares.pop(kind, None)
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return None
        line = json.dumps({"argv": argv, "env": env, "cwd": str(model_dir),
                           "log": str(log_path), "memory_bytes": memory}) + "\n"
        try:
            # The spare may still be importing; a large environment could fill the pipe.
            await asyncio.to_thread(_assign, spare.stdin, line.encode())
        except OSError:
            _signal_group(spare, signal.SIGKILL)
            spare.wait()
            return None
        return spare

    def _start_spare(self, kind: SpareKind) -> None:
        current = self._spares.get(kind)
        if current is not None and current.poll() is None:
            return
        runtime, threads, lean = kind
        argv = [sys.executable, "-m", "tideserve.serving.spare", "--runtime", runtime,
                "--threads", str(threads), *(["--lean"] if lean else [])]
        with open(self.log_dir / f"spare-{runtime}-{threads}.log", "ab") as log:
            self._spares[kind] = subprocess.Popen(
                argv, cwd=self.log_dir, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: _child_setup(None),
            )

    def stop_spares(self) -> None:
        for spare in self._spares.values():
            if spare.poll() is None:
                _signal_group(spare, signal.SIGTERM)
        for spare in self._spares.values():
            try:
                spare.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _signal_group(spare, signal.SIGKILL)
                spare.wait()
            if spare.stdin is not None:
                spare.stdin.close()
        self._spares.clear()

    def exit_code(self, handle: InstanceHandle) -> int | None:
        proc = self._procs.get(handle.spec.instance_id)
        return proc.poll() if proc is not None else -1

    async def stop(self, handle: InstanceHandle, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period (SageMaker gives 30 s)."""
        proc = self._procs.pop(handle.spec.instance_id, None)
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
        if proc is not None and self.log_observer is not None:
            self.log_observer.closed(handle.log_path)
            for path in self._container_logs(handle.spec).values():
                self.log_observer.closed(path)

    def _container_log_dir(self, spec: InstanceSpec) -> Path:
        return self.log_dir / f"{spec.instance_id}.containers"

    def _container_logs(self, spec: InstanceSpec) -> dict[str, Path]:
        """A pipeline's output files by ContainerHostname ({} for one container)."""
        if spec.containers is None:
            return {}
        where = self._container_log_dir(spec)
        return {name: container_log(where, name) for name in spec.containers.hostnames}

    def stop_all_now(self) -> None:
        """Synchronous last resort at shutdown."""
        self.stop_spares()
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in list(self._procs.values()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._procs.clear()

    def failure_detail(self, handle: InstanceHandle) -> str:
        try:
            lines = handle.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines if "Error" in ln or "error" in ln]
        return (errors or lines or [""])[-1][:500]


def _spare_kind(spec: InstanceSpec, model_dir: Path, threads: int) -> SpareKind | None:
    """Which spare can become this instance; None when it must start cold."""
    if any(name.startswith(_IMPORT_TIME_ENV) for name in spec.environment):
        return None
    try:
        pickled = any(p.name.lower().endswith(_PICKLES) for p in model_dir.iterdir())
    except OSError:
        return None
    # A multi-model instance's models are not known yet: any may need the full framework.
    lean = "SAGEMAKER_MULTI_MODEL" not in spec.environment
    return spec.runtime, threads, lean and not pickled and not (model_dir / "code").exists()


def _assign(pipe: Any, line: bytes) -> None:
    pipe.write(line)
    pipe.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def kill_orphan(pid: int) -> None:
    """Stop a process a previous server run recorded, if it is still one of our instances."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"tideserve" not in cmdline and b"SAGEMAKER_BIND_TO_PORT" not in cmdline:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
