"""What a multi-container instance runs: its containers, in order, and how (Serial or
Direct). The fleet provider hands it to the front process in the environment
(`TIDESERVE_CONTAINERS`, JSON), which the front removes before it starts any container, so a
container never sees another's Environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLAN_ENV = "TIDESERVE_CONTAINERS"
# Where the front writes each container's output, one file per container (container_log);
# unset, the front prefixes each line with `[hostname]` in its own output.
LOG_DIR_ENV = "TIDESERVE_CONTAINER_LOG_DIR"


def container_log(log_dir: Path, hostname: str) -> Path:
    """The file the front writes container `hostname`'s stdout and stderr to (the fleet
    ingests it into the container's own log stream)."""
    return log_dir / f"{hostname}.log"


@dataclass(frozen=True)
class ContainerProcess:
    hostname: str
    model_dir: Path
    runtime: str
    environment: Mapping[str, str] = field(default_factory=dict)
    # A user's own contract-speaking server (TIDESERVE_SERVE_COMMAND); `{port}` and
    # `{model_dir}` are substituted.
    command: str | None = None


@dataclass(frozen=True)
class ContainerPlan:
    mode: str  # Serial or Direct
    containers: tuple[ContainerProcess, ...]

    @property
    def hostnames(self) -> tuple[str, ...]:
        return tuple(c.hostname for c in self.containers)

    def encode(self) -> str:
        return json.dumps({"mode": self.mode, "containers": [
            {"hostname": c.hostname, "model_dir": str(c.model_dir), "runtime": c.runtime,
             "environment": dict(c.environment), "command": c.command}
            for c in self.containers]})

    @staticmethod
    def decode(raw: str) -> ContainerPlan:
        data: dict[str, Any] = json.loads(raw)
        return ContainerPlan(str(data["mode"]), tuple(
            ContainerProcess(str(c["hostname"]), Path(c["model_dir"]), str(c["runtime"]),
                             {str(k): str(v) for k, v in c.get("environment", {}).items()},
                             c.get("command"))
            for c in data["containers"]))
