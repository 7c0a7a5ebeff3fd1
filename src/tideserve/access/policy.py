"""IAM identity-policy documents: parsed once, when PutUserPolicy stores them, into typed
statements (refusing what IAM refuses, as MalformedPolicyDocument), then evaluated the way IAM
evaluates one account's identity policies (IAM User Guide, policy evaluation logic):

    an explicit Deny in any statement that matches  -> denied ("with an explicit deny")
    else an Allow that matches every resource        -> allowed
    else                                             -> denied ("no identity-based policy
                                                        allows the <action> action")

Matching: actions are `<service>:<name>`, compared case-insensitively, `*` and `?` wildcards
anywhere in the name (`sagemaker:Describe*`); resources are ARNs compared case-sensitively
with `*` (any run, across `/` and `:`) and `?` (one character) — which is why a policy naming
`endpoint/MyEndpoint` never matches SageMaker's lower-cased `endpoint/myendpoint`, on AWS too.
NotAction/NotResource invert their element. Conditions: access/conditions.py.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tideserve.access.conditions import Condition, ContextValue, parse_conditions
from tideserve.errors import ValidationError

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition",
     "Principal", "NotPrincipal"})
_SID = re.compile(r"^[A-Za-z0-9]*$")
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
SYNTAX = "Syntax errors in policy."


class MalformedPolicy(ValidationError):
    """IAM's MalformedPolicyDocument (400)."""

    code = "MalformedPolicyDocument"


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]

    @property
    def has_conditions(self) -> bool:
        return any(s.conditions for s in self.statements)


@dataclass(frozen=True)
class Decision:
    """The answer for one (action, resource) the request needs; `allowed` False names why."""

    allowed: bool
    action: str = ""
    resource: str = ""
    explicit: bool = False  # refused by a Deny rather than for want of an Allow

    def message(self, caller_arn: str) -> str:
        head = (f"User: {caller_arn} is not authorized to perform: {self.action} "
                f"on resource: {self.resource}")
        if self.explicit:
            return f"{head} with an explicit deny in an identity-based policy"
        return f"{head} because no identity-based policy allows the {self.action} action"


ALLOWED = Decision(True)


# -- parsing -----------------------------------------------------------------------------------

def parse_policy(text: str) -> Policy:
    """The document as IAM reads it, or MalformedPolicy in IAM's words."""
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, TypeError) as exc:
        raise MalformedPolicy(SYNTAX) from exc
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise MalformedPolicy(SYNTAX)
    if set(doc) - {"Version", "Id", "Statement"}:
        raise MalformedPolicy(SYNTAX)
    version = doc.get("Version", "2008-10-17")  # IAM's default when none is given
    if version not in VERSIONS:
        raise MalformedPolicy(SYNTAX)
    raw = doc["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise MalformedPolicy(SYNTAX)
    sids = [s.get("Sid") for s in raw_statements if isinstance(s, dict) and s.get("Sid")]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique.")
    return Policy(version, tuple(_statement(s) for s in raw_statements))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _statement(raw: Any) -> Statement:
    if not isinstance(raw, dict) or set(raw) - _STATEMENT_KEYS:
        raise MalformedPolicy(SYNTAX)
    if "Principal" in raw or "NotPrincipal" in raw:
        raise MalformedPolicy("Policy document should not specify a principal.")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str) or not _SID.match(sid):
        raise MalformedPolicy(SYNTAX)
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise MalformedPolicy(SYNTAX)
    actions, not_action = _either(raw, "Action", "NotAction",
                                  "Policy statement must contain actions.")
    resources, not_resource = _either(raw, "Resource", "NotResource",
                                      "Policy statement must contain resources.")
    for action in actions:
        _check_action(action)
    for resource in resources:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            raise MalformedPolicy(f'Resource {resource} must be in ARN format or "*".')
    return Statement(raw["Effect"], actions, not_action, resources, not_resource,
                     parse_conditions(raw.get("Condition"), MalformedPolicy))


def _either(raw: Mapping[str, Any], name: str, negated: str,
            missing: str) -> tuple[tuple[str, ...], bool]:
    if name in raw and negated in raw:
        raise MalformedPolicy(SYNTAX)
    if name not in raw and negated not in raw:
        raise MalformedPolicy(missing)
    value = raw.get(name, raw.get(negated))
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise MalformedPolicy(SYNTAX)
    return tuple(values), negated in raw


def _check_action(action: str) -> None:
    if action == "*":
        return
    if ":" not in action:
        raise MalformedPolicy("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, "
                              "ec2, etc.")
    if action.count(":") > 1:
        raise MalformedPolicy("Actions/Condition can contain only one colon.")
    vendor = action.split(":", 1)[0]
    if not vendor or not re.match(r"^[A-Za-z0-9-]+$", vendor):
        raise MalformedPolicy(f"Vendor {vendor} is not valid")


# -- evaluation --------------------------------------------------------------------------------

def evaluate(
    policies: Iterable[Policy],
    needs: Sequence[tuple[str, str]],
    context: Mapping[str, ContextValue],
) -> Decision:
    """Whether every (action, resource ARN) in `needs` is allowed; an explicit deny of any of
    them wins over every allow."""
    policies = list(policies)
    for action, resource in needs:
        if _any_match(policies, "Deny", action, resource, context):
            return Decision(False, action, resource, explicit=True)
    for action, resource in needs:
        if not _any_match(policies, "Allow", action, resource, context):
            return Decision(False, action, resource)
    return ALLOWED


def _any_match(policies: list[Policy], effect: str, action: str, resource: str,
               context: Mapping[str, ContextValue]) -> bool:
    for policy in policies:
        for s in policy.statements:
            if s.effect == effect and _matches(policy.version, s, action, resource, context):
                return True
    return False


def _matches(version: str, s: Statement, action: str, resource: str,
             context: Mapping[str, ContextValue]) -> bool:
    if any(action_matches(p, action) for p in s.actions) == s.not_action:
        return False
    patterns = (_substitute(p, context) for p in s.resources) if version == "2012-10-17" \
        else iter(s.resources)
    if any(resource_matches(p, resource) for p in patterns) == s.not_resource:
        return False
    return all(c.holds(context) for c in s.conditions)


def _substitute(pattern: str, context: Mapping[str, ContextValue]) -> str:
    """Policy variables (`${aws:username}`), as Version 2012-10-17 reads a Resource; a
    variable with no value makes the resource match nothing, as in IAM."""
    if "${" not in pattern:
        return pattern

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("*", "?", "$"):
            return "\0" + name  # a literal, not a wildcard (decoded in _glob)
        found = context.get(name.lower())
        return found if isinstance(found, str) else "\0\0"  # matches no ARN
    return _VARIABLE.sub(value, pattern)


def action_matches(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    return _glob(pattern, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*":
        return True
    return _glob(pattern, ignore_case=False).fullmatch(resource) is not None


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            parts.append(re.escape(ch))
            escaped = False
        elif ch == "\0":
            escaped = True
        elif ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))
