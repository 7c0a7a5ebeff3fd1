"""Scaling activities: how they are worded, identified and finished.

Wording follows what SageMaker targets show in DescribeScalingActivities (spec §1.7):
    Description   "Setting desired instance count to 5."
    Cause         "monitor alarm <AlarmName> in state ALARM triggered policy <PolicyName>"
    StatusMessage "Successfully set desired instance count to 5. Change successfully fulfilled
                   by sagemaker."
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from tideserve.scaling.model import (
    Activity,
    ActivityStatus,
    NotScaledReason,
    TargetKey,
    capacity_noun,
)

# Activity ids are derived from what happened (target, time, cause, outcome), so the live
# controller and the simulator, fed the same inputs, produce the same ids.
_ACTIVITY_NAMESPACE = uuid.UUID("6f1c1d0e-7d36-4c53-9a0e-2f8f3c1b5a10")
NOT_SCALED_DESCRIPTION = "Attempting to scale due to alarm triggered"


def activity_id(key: TargetKey, now: float, cause: str, outcome: str) -> str:
    seed = f"{key.resource_id}|{key.scalable_dimension}|{now!r}|{cause}|{outcome}"
    return str(uuid.uuid5(_ACTIVITY_NAMESPACE, seed))


def policy_cause(alarm_name: str, policy_name: str) -> str:
    return f"monitor alarm {alarm_name} in state ALARM triggered policy {policy_name}"


def scheduled_cause(action_name: str) -> str:
    """AWS's wording is UNCONFIRMED; this is the spec's recommendation."""
    return f"scheduled action name {action_name} was triggered"


def bound_cause(kind: str, value: int) -> str:
    """`minimum capacity was set to 110` is observed; the maximum form is by symmetry."""
    return f"{kind} capacity was set to {value}"


def start_activity(
    key: TargetKey, desired: int, cause: str, now: float, policy_arn: str | None = None
) -> Activity:
    """A new activity that sets the capacity to `desired`; it is Pending until the driver has
    asked the target service, InProgress while that works, then finished by finish()."""
    return Activity(
        activity_id=activity_id(key, now, cause, f"set:{desired}"),
        key=key,
        description=f"Setting desired {capacity_noun(key.scalable_dimension)} to {desired}.",
        cause=cause,
        start_time=now,
        status_code="Pending",
        desired=desired,
        policy_arn=policy_arn,
    )


def not_scaled_activity(
    key: TargetKey, cause: str, now: float, reason: NotScaledReason, policy_arn: str | None
) -> Activity:
    """A decision record that did not scale (listed with IncludeNotScaledActivities)."""
    return Activity(
        activity_id=activity_id(key, now, cause, f"not-scaled:{reason.code}"),
        key=key,
        description=NOT_SCALED_DESCRIPTION,
        cause=cause,
        start_time=now,
        end_time=now,
        status_code="Failed",
        not_scaled_reasons=(reason,),
        policy_arn=policy_arn,
    )


def failed_activity(key: TargetKey, desired: int, cause: str, now: float, message: str) -> Activity:
    """An activity that could not even start (e.g. a scheduled action on an unscalable
    resource, or one that would make Min > Max)."""
    return replace(
        start_activity(key, desired, cause, now),
        status_code="Failed",
        end_time=now,
        status_message=message,
    )


def success_message(activity: Activity) -> str:
    noun = capacity_noun(activity.key.scalable_dimension)
    return (
        f"Successfully set desired {noun} to {activity.desired}. "
        "Change successfully fulfilled by sagemaker."
    )


def failure_message(activity: Activity, reason: str) -> str:
    """`reason` is the target service's error text, e.g. the SageMaker ResourceLimitExceeded
    message with its (Service: …; Error Code: …) suffix."""
    noun = capacity_noun(activity.key.scalable_dimension)
    return f"Failed to set desired {noun} to {activity.desired}. Reason: {reason}"


def mark(
    activity: Activity,
    status: ActivityStatus,
    now: float | None = None,
    message: str | None = None,
    details: str | None = None,
) -> Activity:
    """The activity with a new status; terminal statuses get an EndTime (`now`)."""
    terminal = status in ("Successful", "Overridden", "Unfulfilled", "Failed")
    return replace(
        activity,
        status_code=status,
        end_time=now if terminal and now is not None else activity.end_time,
        status_message=message if message is not None else activity.status_message,
        details=details if details is not None else activity.details,
    )
