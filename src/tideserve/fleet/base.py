"""The fleet contract: a provider starts, checks and stops instances. An instance is anything
that answers the container contract (GET /ping, POST /invocations) at a URL; readiness is
checked over HTTP by the controller, not by the provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tideserve.cost.catalog import InstanceType
from tideserve.serving.containers.plan import ContainerPlan


@dataclass(frozen=True)
class InstanceSpec:
    instance_id: str
    endpoint_name: str
    variant_name: str
    instance_type: InstanceType
    model_dir: Path
    runtime: str
    environment: dict[str, str] = field(default_factory=dict)
    # (log group, log stream) for the instance's output; None: its endpoint's stream
    # (tideserve.logs.names: a transform job's instance sets transform_job_instance's).
    log_stream: tuple[str, str] | None = None
    trust_pickle: bool = False
    # A user's own contract-speaking server instead of ours (from the container's
    # TIDESERVE_SERVE_COMMAND); `{port}` and `{model_dir}` are substituted.
    command: str | None = None
    # A multi-container model's containers, all run by this one instance (its front process,
    # serving/containers/front.py); None for a model of one container.
    containers: ContainerPlan | None = None


@dataclass
class InstanceHandle:
    spec: InstanceSpec
    url: str
    pid: int
    log_path: Path
    started_at: float
    # The secret every request to the instance carries (serving/instance_token.py).
    token: str | None = None


class InstanceProvider(Protocol):
    async def start(self, spec: InstanceSpec) -> InstanceHandle: ...

    def exit_code(self, handle: InstanceHandle) -> int | None:
        """None while the instance runs; its exit status once it has stopped."""
        ...

    async def stop(self, handle: InstanceHandle, grace_seconds: float) -> None: ...

    def failure_detail(self, handle: InstanceHandle) -> str:
        """The last lines an instance wrote, for FailureReason."""
        ...
