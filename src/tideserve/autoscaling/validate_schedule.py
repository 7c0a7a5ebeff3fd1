"""PutScheduledAction request → ScheduledAction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tideserve.autoscaling.fields import Request, constraint, optional_int, optional_str
from tideserve.autoscaling.validate import target_key
from tideserve.errors import LimitExceededError, ValidationError
from tideserve.scaling.model import ScheduledAction, TargetKey
from tideserve.scaling.schedule import parse_schedule, parse_timezone

MAX_ACTIONS_PER_TARGET = 200
# botocore's ScheduledActionName pattern: no leading/trailing space, no control characters,
# no ':', '/' or '|'.
_NAME = re.compile(r"^(?! )(?!.* $)[^\x00-\x1f\x7f-\x9f:/|]+$")


@dataclass(frozen=True)
class ScheduledActionRequest:
    key: TargetKey
    name: str
    schedule: str | None
    timezone: str | None
    start_time: float | None
    end_time: float | None
    min_capacity: int | None
    max_capacity: int | None
    has_target_action: bool


def validate_put_scheduled_action(request: Request) -> ScheduledActionRequest:
    key = target_key(request)
    name = request.get("ScheduledActionName")
    if not isinstance(name, str) or not 1 <= len(name) <= 256 or not _NAME.match(name):
        raise constraint(name, "scheduledActionName",
                         "Member must have length between 1 and 256, must not start or end "
                         "with a space and must not contain control characters, ':', '/' or '|'")
    schedule = optional_str(request, "Schedule")
    if schedule is not None:
        parse_schedule(schedule)
    timezone = optional_str(request, "Timezone")
    parse_timezone(timezone)
    start, end = _time(request, "StartTime"), _time(request, "EndTime")
    if start is not None and end is not None and end <= start:
        raise ValidationError("EndTime must be after StartTime")
    action = request.get("ScalableTargetAction")
    low = high = None
    if action is not None:
        low = optional_int(action, "MinCapacity", 0, "scalableTargetAction.MinCapacity")
        high = optional_int(action, "MaxCapacity", 0, "scalableTargetAction.MaxCapacity")
        if low is not None and high is not None and low > high:
            raise ValidationError("Minimum capacity cannot be greater than maximum capacity")
    return ScheduledActionRequest(key, name, schedule, timezone, start, end, low, high,
                                  action is not None)


def _time(request: Request, name: str) -> float | None:
    """Epoch seconds (the json wire form), an aware datetime, or ISO 8601 text."""
    value: Any = request.get(name)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise constraint(value, name[0].lower() + name[1:], "Member must be a timestamp")


def put_scheduled_action(
    existing: ScheduledAction | None,
    req: ScheduledActionRequest,
    now: float,
    region: str,
    account: str,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> ScheduledAction:
    """Create (Schedule required) or update. On update an omitted StartTime/EndTime is
    cleared (AWS documents this); an omitted Schedule, Timezone or ScalableTargetAction keeps
    the stored one."""
    if existing is None and req.schedule is None:
        raise ValidationError("Schedule is required when creating a scheduled action")
    arn = existing.arn if existing else (
        f"arn:aws:autoscaling:{region}:{account}:scheduledAction:{new_id()}:resource/"
        f"{req.key.service_namespace}/{req.key.resource_id}:scheduledActionName/{req.name}"
    )
    keep = existing is not None and not req.has_target_action
    schedule = req.schedule or (existing.schedule if existing else "")
    return ScheduledAction(
        name=req.name,
        arn=arn,
        key=req.key,
        schedule=schedule,
        creation_time=existing.creation_time if existing else now,
        timezone=req.timezone or (existing.timezone if existing else None),
        start_time=req.start_time,
        end_time=req.end_time,
        min_capacity=existing.min_capacity if keep and existing else req.min_capacity,
        max_capacity=existing.max_capacity if keep and existing else req.max_capacity,
    )


def check_action_fits(action: ScheduledAction, others: Sequence[ScheduledAction]) -> None:
    mine = [a for a in others if a.key == action.key and a.name != action.name]
    if len(mine) >= MAX_ACTIONS_PER_TARGET:
        raise LimitExceededError(
            f"A scalable target can have at most {MAX_ACTIONS_PER_TARGET} scheduled actions",
            code="LimitExceededException",
        )


def forecast_time(request: Request, name: str) -> float:
    """GetPredictiveScalingForecast's StartTime/EndTime: required timestamps."""
    value = _time(request, name)
    if value is None:
        raise constraint(None, name[0].lower() + name[1:], "Member must not be null")
    return value
