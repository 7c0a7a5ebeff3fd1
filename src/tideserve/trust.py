"""Wiring for keys, permissions and the audit trail (access/, audit/): built once by
server.build and attached to the API app and the S3 app, like server.py's other parts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tideserve.access.directory import Directory
from tideserve.access.gate import Gate
from tideserve.access.iam_api import IdentityAndAccess
from tideserve.api.app import TideserveApp
from tideserve.api.rpc import OperationRegistry
from tideserve.api.sts import SecurityTokenService
from tideserve.audit.lookup_api import CloudTrailLookup
from tideserve.audit.service_calls import AuditedCapacity, CapacityPort
from tideserve.audit.trail import Trail
from tideserve.clock import Clock
from tideserve.control.access_keys import AccessKeys
from tideserve.settings import Settings


@dataclass
class Trust:
    keys: AccessKeys
    directory: Directory
    gate: Gate
    trail: Trail
    settings: Settings

    def secret_for(self, key_id: str) -> str | None:
        """The secret SigV4 checks against, for Active keys only: an Inactive key fails
        authentication as an unknown one does (UnrecognizedClient / InvalidClientTokenId)."""
        if self.directory.key_status(key_id) != "Active":
            return None
        return self.keys.secret_for(key_id)

    def principal_of(self, key_id: str) -> tuple[str, str] | None:
        who = self.gate.principal(key_id)
        return (who.user.user_id, who.user.arn) if who is not None else None

    def audited(self, capacity: CapacityPort) -> AuditedCapacity:
        """The capacity port as the autoscaler drives it, its calls in the trail as AAS's."""
        return AuditedCapacity(capacity, self.trail, self.settings.account, self.settings.region)

    def attach(self, app: TideserveApp) -> None:
        app.access, app.audit = self.gate, self.trail
        if app.s3 is not None:
            app.s3.access, app.s3.audit = self.gate, self.trail  # type: ignore[attr-defined]
        for mount in app.mounts:  # tideserve's own signed routes (traces, job progress)
            if hasattr(mount, "access"):
                mount.access = self.gate
        self.directory.listeners.append(app.secret_for.forget)


def build_trust(engine: Engine, keys: AccessKeys, settings: Settings, clock: Clock,
                registry: OperationRegistry) -> Trust:
    directory = Directory(engine, keys, settings.account)
    directory.adopt_key_owners(clock.now())
    gate = Gate(directory, settings.region, settings.account)
    trail = Trail(engine, settings.account, clock)
    trail.prune(clock.now())
    trust = Trust(keys, directory, gate, trail, settings)
    for op, fn in IdentityAndAccess(directory, clock, keys.first_issued).operations().items():
        registry.register_with_caller("iam", op, fn)
    for op, caller_fn in SecurityTokenService(settings.account,
                                              trust.principal_of).operations().items():
        registry.register_with_caller("sts", op, caller_fn)
    registry.register_all("cloudtrail", CloudTrailLookup(trail, clock).operations())
    return trust
