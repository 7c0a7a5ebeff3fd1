"""Test helpers: real models trained on data scikit-learn ships, packed the way SageMaker
users pack them, and a real `tideserve up` process on a free port."""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import uvicorn
from botocore.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_breast_cancer(kind: str = "logistic") -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        model = RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1)
    model.fit(X, y)
    return model, X


def pack_skops(model: Any, dest: Path, extra: dict[str, str] | None = None) -> Path:
    """model.tar.gz holding model.skops (and any extra files, e.g. code/inference.py)."""
    import skops.io

    dest.mkdir(parents=True, exist_ok=True)
    skops_path = dest / "model.skops"
    skops.io.dump(model, skops_path)
    archive = dest / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(skops_path, arcname="model.skops")
        for name, text in (extra or {}).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A model.tar.gz in memory: each name (a path inside the archive) with its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cost_by_purchase_type(server: RunningServer, tag: str, value: str) -> dict[str, float]:
    """Today's UnblendedCost of what carries tag `tag`=`value`, by purchase type ("On Demand
    Instances", "Spot Instances"), through Cost Explorer."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    costs = server.client("ce").get_cost_and_usage(
        TimePeriod={"Start": today, "End": tomorrow}, Granularity="DAILY",
        Metrics=["UnblendedCost"], GroupBy=[{"Type": "DIMENSION", "Key": "PURCHASE_TYPE"}],
        Filter={"Tags": {"Key": tag, "Values": [value]}})
    return {g["Keys"][0]: float(g["Metrics"]["UnblendedCost"]["Amount"])
            for r in costs["ResultsByTime"] for g in r["Groups"]}


def csv_rows(X: Any) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in X)


@dataclass
class RunningServer:
    url: str
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    def credentials(self) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.state_dir / "credentials")
        section = parser["default"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client of this server, with the keys its credentials file holds."""
        cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=70, **config)
        key_id, secret = self.credentials()
        session = boto3.Session(region_name="us-east-1", aws_access_key_id=key_id,
                                aws_secret_access_key=secret)
        return session.client(service, endpoint_url=self.url, config=cfg)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def start_server(state_dir: Path, period: float = 2.0, extra: list[str] | None = None,
                 port: int | None = None) -> RunningServer:
    port = port or free_port()
    log_path = state_dir.parent / f"server-{port}.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideserve.cli", "up", "--port", str(port), "--state-dir",
             str(state_dir), "--period", str(period), *(extra or [])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", state_dir, proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not become ready:\n{server.log()}")


def stop_server(server: RunningServer, sig: int = signal.SIGTERM) -> None:
    """Stop the server and, whatever happens, every process in its session."""
    if server.proc.poll() is None:
        try:
            os.killpg(server.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    _kill_session(server.proc.pid)


def _kill_session(sid: int) -> None:
    """Instances run in their own process groups; find them by session and kill them too."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            continue


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free loopback port until the block ends;
    yields its base URL. For tests of one layer (wire protocols, handlers) without a whole
    `tideserve up`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
