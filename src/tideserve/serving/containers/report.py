"""What crosses the router <-> front hop of a multi-container instance, besides the body.

The router learns what happened inside the instance from one response header,
`X-Tideserve-Containers`, a JSON object: `latencies` [[hostname, microseconds], ...] in the
order the containers ran, and on a failure `failed` (the hostname), `status` (the container's
own status; 0 when it gave no answer) and `message` (what the client's ModelError says). One
header, read only for multi-container backends, so a single-container request pays nothing.

The router forwards TargetContainerHostname to the front after checking it here
(`check_target`), so the front never sees a name that is not one of its containers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tideserve.errors import ValidationError

REPORT_HEADER = "X-Tideserve-Containers"
REPORT_HEADER_RAW = REPORT_HEADER.lower().encode()
TARGET_HEADER = "X-Amzn-SageMaker-Target-Container-Hostname"
TARGET_HEADER_LOWER = TARGET_HEADER.lower()
SERIAL = "Serial"
DIRECT = "Direct"


@dataclass(frozen=True)
class ContainerLayout:
    """What the router knows of a multi-container instance: how its containers run and
    their names, in order."""

    mode: str  # Serial or Direct
    hostnames: tuple[str, ...]

    def check_target(self, target: str | None, endpoint: str) -> None:
        """Raise ValidationError when TargetContainerHostname does not fit the endpoint (spec
        hosting-jobs §2.2: missing on Direct, present on Serial, or not a container)."""
        if self.mode == DIRECT:
            if target is None:
                raise ValidationError(
                    f"Endpoint {endpoint} is configured for direct invocation; "
                    "TargetContainerHostname is required."
                )
            if target not in self.hostnames:
                raise ValidationError(
                    f"Container hostname {target} does not exist in endpoint {endpoint}."
                )
        elif target is not None:
            raise ValidationError(f"Endpoint {endpoint} is not configured for direct invocation.")


def check_single_target(target: str | None, endpoint: str) -> None:
    """TargetContainerHostname on an endpoint of one container."""
    if target is not None:
        raise ValidationError(f"Endpoint {endpoint} is not configured for direct invocation.")


@dataclass(frozen=True)
class ContainerReport:
    latencies: tuple[tuple[str, float], ...] = ()
    failed: str | None = None
    status: int = 0
    message: str = ""

    def encode(self) -> str:
        out: dict[str, object] = {"latencies": [list(x) for x in self.latencies]}
        if self.failed is not None:
            out.update(failed=self.failed, status=self.status, message=self.message)
        return json.dumps(out, separators=(",", ":"), ensure_ascii=True)

    @staticmethod
    def decode(raw: str | None) -> ContainerReport | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            latencies = tuple((str(h), float(us)) for h, us in data.get("latencies", ()))
            failed = data.get("failed")
            return ContainerReport(latencies, None if failed is None else str(failed),
                                   int(data.get("status", 0)), str(data.get("message", "")))
        except (ValueError, TypeError, AttributeError):
            return None

    @property
    def model_us(self) -> float:
        """A pipeline's ModelLatency: the sum over the containers that ran (AWS)."""
        return sum(us for _, us in self.latencies)
