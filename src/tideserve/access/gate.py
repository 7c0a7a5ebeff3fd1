"""The authorisation every AWS request passes after SigV4: who the key is, what the call
needs (actions.py), and whether the key's policies allow it (policy.py).

It runs on every InvokeEndpoint, so answers are cached: principals by key id, decisions by
(key id, the (action, resource) pairs needed) — a hit costs one tuple build and one dict
lookup. A decision that depends on the request (its policies have Conditions: source IP,
time) is evaluated afresh each time. Any IAM change (directory listeners) drops both caches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tideserve.access.actions import Account, needs
from tideserve.access.conditions import ContextValue
from tideserve.access.directory import Directory, Principal
from tideserve.access.policy import Decision, evaluate
from tideserve.errors import AccessDeniedError, AuthError

_CACHE_LIMIT = 65536
# Calls IAM allows whatever the policies say (STS: "no permissions are required").
_ALWAYS = frozenset({("sts", "GetCallerIdentity")})


class Gate:
    def __init__(self, directory: Directory, region: str, account: str) -> None:
        self.directory = directory
        self.account = Account(region, account, self._user_arn)
        self._principals: dict[str, Principal | None] = {}
        self._decisions: dict[tuple[str, tuple[tuple[str, str], ...]], Decision] = {}
        # Bumped by every IAM change: an answer computed from state read before a change is
        # not cached after it (a revoked permission must not outlive its revocation).
        self._generation = 0
        directory.listeners.append(self.forget)

    def forget(self) -> None:
        self._generation += 1
        self._principals.clear()
        self._decisions.clear()

    def _user_arn(self, name: str) -> str:
        user = self.directory.get_user(name)
        return user.arn if user is not None else self.directory.arn(name)

    def principal(self, key_id: str) -> Principal | None:
        if key_id in self._principals:
            return self._principals[key_id]
        generation = self._generation
        found = self.directory.principal(key_id)
        if len(self._principals) > _CACHE_LIMIT:
            self._principals.clear()
        if generation == self._generation:
            self._principals[key_id] = found
        return found

    def identify(self, key_id: str) -> dict[str, Any] | None:
        """CloudTrail's userIdentity for the key (IAMUser), None for one no longer usable."""
        who = self.principal(key_id)
        if who is None:
            return None
        return {"type": "IAMUser", "principalId": who.user.user_id, "arn": who.user.arn,
                "accountId": self.account.account, "accessKeyId": key_id,
                "userName": who.user.name}

    def authorize(self, key_id: str, service: str, operation: str,
                  params: Mapping[str, Any], source_ip: str = "") -> None:
        """Raise AccessDeniedError (IAM's sentence) unless the key may make this call."""
        generation = self._generation
        who = self.principal(key_id)
        if who is None:  # disabled or deleted since its signature was checked
            raise AuthError("The security token included in the request is invalid.",
                            code="UnrecognizedClientException")
        if (service, operation) in _ALWAYS:
            return
        required = needs(self.account, service, operation, params, who.user.name)
        cache_key = (key_id, required)
        decision = self._decisions.get(cache_key)
        if decision is None:
            conditional = any(p.has_conditions for p in who.policies)
            context = self._context(who, source_ip) if conditional else {}
            decision = evaluate(who.policies, required, context)
            if not conditional and generation == self._generation:
                if len(self._decisions) > _CACHE_LIMIT:
                    self._decisions.clear()
                self._decisions[cache_key] = decision
        if not decision.allowed:
            raise AccessDeniedError(decision.message(who.user.arn))

    def _context(self, who: Principal, source_ip: str) -> dict[str, ContextValue]:
        now = time.time()
        return {
            "aws:username": who.user.name,
            "aws:userid": who.user.user_id,
            "aws:principalarn": who.user.arn,
            "aws:principalaccount": self.account.account,
            "aws:principaltype": "User",
            "aws:sourceip": source_ip,
            "aws:currenttime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "aws:epochtime": str(int(now)),
            "aws:securetransport": "false",
            "aws:requestedregion": self.account.region,
        }
