"""Budget actions' operations (spec §12.6): create, describe, update, delete, execute, and
the state machine they move through, each transition in the action's history and alerted to
its subscribers when it becomes PENDING or has executed:

    STANDBY --threshold crossed, AUTOMATIC--> EXECUTION_IN_PROGRESS -> EXECUTION_SUCCESS|FAILURE
    STANDBY --threshold crossed, MANUAL-----> PENDING --APPROVE--> EXECUTION_IN_PROGRESS
    EXECUTION_FAILURE --RETRY--> EXECUTION_IN_PROGRESS
    EXECUTION_SUCCESS --REVERSE--> REVERSE_SUCCESS        (effects.py undoes what it did)
    any settled status --RESET--> STANDBY                 (re-armed)

An ExecutionType not valid for the status is InvalidParameterException; a busy action
(*_IN_PROGRESS) ResourceLockedException. What the action types do is effects.py's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tideserve.budgets import model as m
from tideserve.budgets.effects import Effects
from tideserve.budgets.store import BudgetStore
from tideserve.clock import Clock
from tideserve.errors import ConflictError, NotFoundError, TideserveError

_BUSY = ("EXECUTION_IN_PROGRESS", "REVERSE_IN_PROGRESS", "RESET_IN_PROGRESS")


class ActionOperations:
    """Mixed into budgets.service.Budgets, which provides the budget lookup and alerts."""

    store: BudgetStore
    effects: Effects
    clock: Clock
    account: str

    def _doc(self, params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _account(self, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _alert(self, budget_name: str, subscribers: list[dict[str, str]],
               body: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _CreateBudgetAction(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        kind = m.enum(params.get("ActionType"), ("APPLY_IAM_POLICY", "APPLY_SCP_POLICY",
                                                 "RUN_SSM_DOCUMENTS"), "actionType")
        member = {"APPLY_IAM_POLICY": "IamActionDefinition",
                  "APPLY_SCP_POLICY": "ScpActionDefinition",
                  "RUN_SSM_DOCUMENTS": "SsmActionDefinition"}[kind]
        definition = params.get("Definition") or {}
        if list(definition) != [member]:
            raise m.invalid(f"ActionType {kind} needs Definition.{member} (and only it).")
        threshold = params.get("ActionThreshold") or {}
        m.enum(threshold.get("ActionThresholdType"), m.THRESHOLD_TYPES,
               "actionThreshold.actionThresholdType")
        action = {
            "ActionId": str(uuid.uuid4()), "BudgetName": doc["Budget"]["BudgetName"],
            "NotificationType": m.enum(params.get("NotificationType"), m.NOTIFICATION_TYPES,
                                       "notificationType"),
            "ActionType": kind, "ActionThreshold": dict(threshold), "Definition": definition,
            "ExecutionRoleArn": params.get("ExecutionRoleArn"),
            "ApprovalModel": m.enum(params.get("ApprovalModel"), ("AUTOMATIC", "MANUAL"),
                                    "approvalModel"),
            "Status": "STANDBY", "Subscribers": m.check_subscribers(params.get("Subscribers")),
        }
        self.store.put_action(action)
        self._history(action, "CREATE_ACTION", "action created")
        return {"AccountId": self.account, "BudgetName": action["BudgetName"],
                "ActionId": action["ActionId"]}

    def _action(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._doc(params)
        action = self.store.action(str(params.get("ActionId")))
        if action is None or action["BudgetName"] != params.get("BudgetName"):
            raise NotFoundError(f"Unable to find action {params.get('ActionId')}.",
                                code="NotFoundException")
        return action

    def _DescribeBudgetAction(self, params: dict[str, Any]) -> dict[str, Any]:
        action = self._action(params)
        return {"AccountId": self.account, "BudgetName": action["BudgetName"],
                "Action": _public(action)}

    def _DescribeBudgetActionsForBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        return {"Actions": [_public(a) for a in self.store.actions(doc["Budget"]["BudgetName"])]}

    def _DescribeBudgetActionsForAccount(self, params: dict[str, Any]) -> dict[str, Any]:
        self._account(params)
        return {"Actions": [_public(a) for a in self.store.actions()]}

    def _DescribeBudgetActionHistories(self, params: dict[str, Any]) -> dict[str, Any]:
        action = self._action(params)
        return {"ActionHistories": self.store.events(action["BudgetName"], action["ActionId"])}

    def _UpdateBudgetAction(self, params: dict[str, Any]) -> dict[str, Any]:
        action = self._action(params)
        if action["Status"] in _BUSY:
            raise ConflictError("The action is in progress.", code="ResourceLockedException")
        before = _public(action)
        if "ActionThreshold" in params:
            m.enum(params["ActionThreshold"].get("ActionThresholdType"), m.THRESHOLD_TYPES,
                   "actionThreshold.actionThresholdType")
            action["ActionThreshold"] = dict(params["ActionThreshold"])
        if "NotificationType" in params:
            action["NotificationType"] = m.enum(params["NotificationType"],
                                                m.NOTIFICATION_TYPES, "notificationType")
        if "ApprovalModel" in params:
            action["ApprovalModel"] = m.enum(params["ApprovalModel"], ("AUTOMATIC", "MANUAL"),
                                             "approvalModel")
        if "Subscribers" in params:
            action["Subscribers"] = m.check_subscribers(params["Subscribers"])
        for member in ("Definition", "ExecutionRoleArn"):
            if member in params:
                action[member] = params[member]
        self.store.put_action(action)
        self._history(action, "UPDATE_ACTION", "action updated")
        return {"AccountId": self.account, "BudgetName": action["BudgetName"],
                "OldAction": before, "NewAction": _public(action)}

    def _DeleteBudgetAction(self, params: dict[str, Any]) -> dict[str, Any]:
        action = self._action(params)
        if action["Status"] in _BUSY:
            raise ConflictError("The action is in progress.", code="ResourceLockedException")
        self.store.delete_action(action["ActionId"])
        self.effects.targets.refusals.pop(action["ActionId"], None)
        return {"AccountId": self.account, "BudgetName": action["BudgetName"],
                "Action": _public(action)}

    def _ExecuteBudgetAction(self, params: dict[str, Any]) -> dict[str, Any]:
        action = self._action(params)
        kind = m.enum(params.get("ExecutionType"), ("APPROVE_BUDGET_ACTION",
                      "RETRY_BUDGET_ACTION", "REVERSE_BUDGET_ACTION", "RESET_BUDGET_ACTION"),
                      "executionType")
        allowed = {"APPROVE_BUDGET_ACTION": ("PENDING",),
                   "RETRY_BUDGET_ACTION": ("EXECUTION_FAILURE",),
                   "REVERSE_BUDGET_ACTION": ("EXECUTION_SUCCESS",),
                   "RESET_BUDGET_ACTION": ("EXECUTION_SUCCESS", "EXECUTION_FAILURE",
                                           "REVERSE_SUCCESS", "REVERSE_FAILURE", "PENDING")}
        if action["Status"] in _BUSY:
            raise ConflictError("The action is in progress.", code="ResourceLockedException")
        if action["Status"] not in allowed[kind]:
            raise m.invalid(f"{kind} is not valid for an action in {action['Status']}.")
        if kind in ("APPROVE_BUDGET_ACTION", "RETRY_BUDGET_ACTION"):
            self._run(action)
        elif kind == "REVERSE_BUDGET_ACTION":
            message = self.effects.reverse(action, action.get("Undo") or {})
            self._move(action, "REVERSE_SUCCESS", "EXECUTE_ACTION", message)
        else:
            self._move(action, "STANDBY", "EXECUTE_ACTION", "reset")
        return {"AccountId": self.account, "BudgetName": action["BudgetName"],
                "ActionId": action["ActionId"], "ExecutionType": kind}

    def _run(self, action: dict[str, Any]) -> None:
        self._move(action, "EXECUTION_IN_PROGRESS", "EXECUTE_ACTION", "executing")
        doc = self.store.budget(action["BudgetName"]) or {"Budget": {}}
        tags = list((doc["Budget"].get("CostFilters") or {}).get("TagKeyValue") or [])
        try:
            message, undo = self.effects.execute(action, tags)
        except TideserveError as exc:
            self._move(action, "EXECUTION_FAILURE", "SYSTEM", exc.message)
            return
        action["Undo"] = undo
        self._move(action, "EXECUTION_SUCCESS", "SYSTEM", message)

    def _move(self, action: dict[str, Any], status: str, event: str, message: str) -> None:
        action["Status"] = status
        self.store.put_action(action)
        self._history(action, event, message)
        if status in ("PENDING", "EXECUTION_SUCCESS", "EXECUTION_FAILURE"):
            self._alert(action["BudgetName"], action["Subscribers"], {
                "Type": "BudgetAction", "ActionId": action["ActionId"], "Status": status,
                "Message": message})

    def _history(self, action: Mapping[str, Any], event: str, message: str) -> None:
        self.store.add_event(action["BudgetName"], self.clock.now(), {
            "Timestamp": self.clock.now(), "Status": action["Status"], "EventType": event,
            "ActionHistoryDetails": {"Message": message, "Action": _public(action)}},
            action_id=action["ActionId"])


def _public(action: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in action.items() if k != "Undo"}
