"""Stack operations as background tasks: create (rolled back on failure), update (in place or
by replacement, old resources removed in the cleanup phase, rolled back on failure) and delete
(reverse dependency order). Each step is recorded as a stack event the moment it happens."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tideserve.clock import Clock
from tideserve.errors import TideserveError, ValidationError
from tideserve.stacks.calls import Services
from tideserve.stacks.evaluate import Evaluated
from tideserve.stacks.graph import creation_order, dependencies
from tideserve.stacks.intrinsics import NO_VALUE, Scope, Unknown, resolve
from tideserve.stacks.providers import Made, Provider, ResourceContext
from tideserve.stacks.store import ResourceRecord, StackRecord, StackStore
from tideserve.stacks.template import parse_template

log = logging.getLogger("tideserve.stacks")
STACK_TYPE = "AWS::CloudFormation::Stack"
_INTERRUPTED = {
    "CREATE_IN_PROGRESS": "CREATE_FAILED", "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
    "DELETE_IN_PROGRESS": "DELETE_FAILED", "UPDATE_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
}
REPLACING = ("Requested update requires the creation of a new physical resource; hence "
             "creating one.")


def custom_name_error(logical_id: str) -> ValidationError:
    return ValidationError("CloudFormation cannot update a stack when a custom-named resource "
                           f"requires replacing. Rename {logical_id} and update the stack "
                           "again.")


@dataclass
class Step:
    """What an update does to one resource: Add, Modify (in place) or Replace; `old` is the
    record before (kept for rollback and cleanup)."""

    logical_id: str
    action: str
    old: ResourceRecord | None = None
    new: ResourceRecord | None = None


@dataclass
class Run:
    """One operation's live view: the records Ref and Fn::GetAtt read, and what it did."""

    stack: StackRecord
    live: dict[str, ResourceRecord]
    steps: list[Step] = field(default_factory=list)
    before: frozenset[str] = frozenset()  # the logical ids the stack had when it began


class StackEngine:
    def __init__(self, store: StackStore, providers: Mapping[str, Provider], services: Services,
                 clock: Clock, region: str, account: str,
                 imports: Callable[[str], Any] | None = None, poll_seconds: float = 0.5,
                 settle_seconds: float = 2.0) -> None:
        self.store = store
        self.providers = providers
        self.services = services
        self.clock = clock
        self.region = region
        self.account = account
        self.imports = imports
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the public operations (each returns at once; the work runs on the loop) -----------

    async def start(self, work: Callable[[], Any]) -> None:
        """Run `work` on the loop; return once it is done or `settle_seconds` have passed, so
        that a quick operation (a policy update) is already complete when a waiter first
        looks, and the CLI need not sleep its 30 s between polls."""
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.wait({task}, timeout=self.settle_seconds)

    async def wait_idle(self) -> None:
        """Until every operation started so far has finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def recover(self) -> None:
        """Stacks a previous run left mid-operation: their work died with it, so they end in
        the matching failed status (from which they can be deleted)."""
        for stack in self.store.stacks():
            failed = _INTERRUPTED.get(stack.status)
            if failed is not None:
                self.set_status(stack, failed, "tideserve stopped during the operation")

    # -- events ----------------------------------------------------------------------------

    def event(self, stack: StackRecord, logical_id: str, physical_id: str | None,
              resource_type: str, status: str, reason: str | None = None,
              properties: Mapping[str, Any] | None = None) -> None:
        prefix = "" if resource_type == STACK_TYPE else f"{logical_id}-"
        event = {"StackId": stack.stack_id, "EventId": f"{prefix}{uuid.uuid4()}",
                 "StackName": stack.name, "LogicalResourceId": logical_id,
                 "PhysicalResourceId": physical_id or "", "ResourceType": resource_type,
                 "Timestamp": self.clock.now(), "ResourceStatus": status}
        if reason:
            event["ResourceStatusReason"] = reason
        if properties is not None:
            event["ResourceProperties"] = json.dumps(properties)
        self.store.add_event(stack.stack_id, event)

    def set_status(self, stack: StackRecord, status: str, reason: str | None = None) -> None:
        stack.status = status
        stack.reason = reason
        self.store.put_stack(stack)
        self.event(stack, stack.name, stack.stack_id, STACK_TYPE, status, reason)

    def _resource(self, run: Run, res: ResourceRecord, status: str, reason: str | None = None,
                  properties: Mapping[str, Any] | None = None) -> None:
        res.status, res.reason, res.updated = status, reason, self.clock.now()
        self.store.put_resource(run.stack.stack_id, res)
        self.event(run.stack, res.logical_id, res.physical_id, res.type, status, reason,
                   properties)

    # -- scope over the live resources -----------------------------------------------------

    def scope(self, evaluated: Evaluated, live: Mapping[str, ResourceRecord],
              stack_of_run: StackRecord | None = None) -> Scope:
        def ref(name: str) -> Any:
            rec = live.get(name)
            return rec.physical_id if rec and rec.physical_id else Unknown(name)

        def get_att(name: str, attribute: str) -> Any:
            rec = live.get(name)
            if rec is None or rec.physical_id is None:
                return Unknown(name)
            if attribute not in rec.attributes:
                raise ValidationError(f"Template error: resource {name} does not support "
                                      f"attribute type {attribute} in Fn::GetAtt")
            return rec.attributes[attribute]

        ports: dict[str, Any] = {"ref": ref, "get_att": get_att, "region": self.region}
        imports, stack = self.imports, stack_of_run
        if imports is not None:
            def import_value(name: str) -> Any:
                if stack is not None and name not in stack.imports:
                    stack.imports.append(name)  # an export in use cannot be deleted
                return imports(name)
            ports["import_value"] = import_value
        return evaluated.scope(**ports)

    def context(self, stack: StackRecord, logical_id: str) -> ResourceContext:
        return ResourceContext(self.services, stack.name, logical_id, self.region, self.account,
                               self.poll_seconds)

    # -- create ----------------------------------------------------------------------------

    async def create(self, stack: StackRecord, evaluated: Evaluated) -> None:
        run = Run(stack, {})
        self.set_status(stack, "CREATE_IN_PROGRESS", "User Initiated")
        try:
            await self._apply(run, evaluated)
            self._finish_outputs(stack, evaluated, run.live)
        except Exception as exc:  # a resource failed, or an output could not be evaluated
            reason = (exc.stack_reason("create") if isinstance(exc, _ResourceFailed)
                      else _message(exc))
            if stack.disable_rollback:
                self.set_status(stack, "CREATE_FAILED", reason)
                return
            self.set_status(stack, "ROLLBACK_IN_PROGRESS", reason + " Rollback requested by "
                            "user.")
            made = list(self.store.resources(stack.stack_id).values())
            ok = await self._delete_all(run, made)
            self.set_status(stack, "ROLLBACK_COMPLETE" if ok else "ROLLBACK_FAILED")
            return
        self.set_status(stack, "CREATE_COMPLETE")

    async def _apply(self, run: Run, evaluated: Evaluated) -> None:
        """Walk the new template in dependency order, the resources of a wave at once: create
        what is new, replace or update what changed; leave the rest. A failure raises
        _ResourceFailed (after the wave's other resources have finished)."""
        for wave in evaluated.waves:
            results = await asyncio.gather(*(self._apply_one(run, evaluated, logical_id)
                                             for logical_id in wave), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            failed = [r.logical_ids for r in failures if isinstance(r, _ResourceFailed)]
            if len(failed) == len(failures) > 0:
                raise _ResourceFailed(*(name for names in failed for name in names))
            if failures:
                raise failures[0]

    async def _apply_one(self, run: Run, evaluated: Evaluated, logical_id: str) -> None:
        decl = evaluated.resources[logical_id]
        provider = self.providers[decl.type]
        old = run.live.get(logical_id)
        try:
            props = _clean(resolve(decl.properties, self.scope(evaluated, run.live, run.stack)))
        except TideserveError as exc:
            self._fail(run, logical_id, decl.type, old, exc, creating=old is None)
        if old is None or old.type != decl.type:
            await self._create_one(run, logical_id, decl.type, provider, props, old)
        elif provider.needs_replacement(old.properties, props):
            if provider.custom_name(props):
                self._fail(run, logical_id, decl.type, old, custom_name_error(logical_id),
                           creating=False)
            await self._create_one(run, logical_id, decl.type, provider, props, old)
        elif props != old.properties:
            await self._update_one(run, logical_id, provider, props, old)

    async def _create_one(self, run: Run, logical_id: str, rtype: str, provider: Provider,
                          props: dict[str, Any], old: ResourceRecord | None) -> None:
        res = ResourceRecord(logical_id, rtype, "CREATE_IN_PROGRESS", properties=props)
        step = Step(logical_id, "Replace" if old else "Add", old, res)
        if old is not None:
            res.physical_id = old.physical_id
            self._resource(run, res, "UPDATE_IN_PROGRESS", REPLACING, props)
            res.physical_id = None
        else:
            self._resource(run, res, "CREATE_IN_PROGRESS", properties=props)
        try:
            made = await provider.create(self.context(run.stack, logical_id), props)
        except Exception as exc:
            self._fail(run, logical_id, rtype, res, exc, creating=old is None)
        res.physical_id, res.attributes = made.physical_id, made.attributes
        run.steps.append(step)
        run.live[logical_id] = res
        if old is None:
            self._resource(run, res, "CREATE_IN_PROGRESS", "Resource creation Initiated")
            self._resource(run, res, "CREATE_COMPLETE")
        else:
            self._resource(run, res, "UPDATE_COMPLETE")

    async def _update_one(self, run: Run, logical_id: str, provider: Provider,
                          props: dict[str, Any], old: ResourceRecord) -> None:
        res = ResourceRecord(logical_id, old.type, "UPDATE_IN_PROGRESS", old.physical_id,
                             dict(old.attributes), props)
        self._resource(run, res, "UPDATE_IN_PROGRESS", properties=props)
        try:
            made = await provider.update(self.context(run.stack, logical_id),
                                         Made(old.physical_id or "", old.attributes),
                                         old.properties, props)
        except Exception as exc:
            self._fail(run, logical_id, old.type, res, exc, creating=False)
        res.physical_id, res.attributes = made.physical_id, made.attributes
        run.steps.append(Step(logical_id, "Modify", old, res))
        run.live[logical_id] = res
        self._resource(run, res, "UPDATE_COMPLETE")

    def _fail(self, run: Run, logical_id: str, rtype: str, res: ResourceRecord | None,
              exc: BaseException, creating: bool = True) -> NoReturn:
        if not isinstance(exc, TideserveError):
            log.exception("resource %s of stack %s failed", logical_id, run.stack.name,
                          exc_info=exc)
        record = res or ResourceRecord(logical_id, rtype, "CREATE_FAILED")
        status = "CREATE_FAILED" if creating else "UPDATE_FAILED"
        display = ResourceRecord(logical_id, rtype, status, record.physical_id,
                                 record.attributes, record.properties)
        self.event(run.stack, logical_id, display.physical_id, rtype, status, _message(exc))
        if logical_id not in run.live:
            display.physical_id = None
            self.store.put_resource(run.stack.stack_id, display)
        raise _ResourceFailed(logical_id) from exc

    def _finish_outputs(self, stack: StackRecord, evaluated: Evaluated,
                        live: Mapping[str, ResourceRecord]) -> None:
        scope = self.scope(evaluated, live, stack)
        outputs = []
        for key, decl in evaluated.template.outputs.items():
            if "Condition" in decl and not evaluated.conditions.get(decl["Condition"], False):
                continue
            entry: dict[str, Any] = {"OutputKey": key,
                                     "OutputValue": _text(resolve(decl.get("Value"), scope))}
            if "Description" in decl:
                entry["Description"] = str(decl["Description"])
            if isinstance(decl.get("Export"), dict):
                entry["ExportName"] = _text(resolve(decl["Export"].get("Name"), scope))
            outputs.append(entry)
        stack.outputs = outputs
        self.store.put_stack(stack)

    # -- update ----------------------------------------------------------------------------

    async def update(self, stack: StackRecord, evaluated: Evaluated,
                     previous: Evaluated, prior: StackRecord) -> None:
        """`prior` is a copy of the stack record before the update (restored on rollback)."""
        live = dict(self.store.resources(stack.stack_id))
        run = Run(stack, live, before=frozenset(live))
        self.set_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")
        try:
            await self._apply(run, evaluated)
            self._finish_outputs(stack, evaluated, run.live)
        except Exception as exc:
            reason = (exc.stack_reason("update") if isinstance(exc, _ResourceFailed)
                      else _message(exc))
            if stack.disable_rollback:
                self.set_status(stack, "UPDATE_FAILED", reason)
                return
            await self._roll_back_update(run, prior, previous, reason)
            return
        self.set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        gone = [s.old for s in run.steps if s.action == "Replace" and s.old]
        removed = [r for name, r in run.live.items() if name not in evaluated.resources]
        await self._delete_all(run, gone + removed)
        for rec in removed:
            self.store.drop_resource(stack.stack_id, rec.logical_id)
        for step in run.steps:  # replaced resources' rows now hold only the new resource
            if step.new is not None:
                self.store.put_resource(stack.stack_id, step.new)
        self.set_status(stack, "UPDATE_COMPLETE")

    async def _roll_back_update(self, run: Run, prior: StackRecord, previous: Evaluated,
                                reason: str) -> None:
        stack = run.stack
        self.set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
        ok = True
        for step in reversed(run.steps):
            if step.action != "Modify" or step.old is None or step.new is None:
                continue
            provider = self.providers[step.old.type]
            try:
                await provider.update(self.context(stack, step.logical_id),
                                      Made(step.new.physical_id or "", step.new.attributes),
                                      step.new.properties, step.old.properties)
                self._resource(run, step.old, "UPDATE_COMPLETE")
            except Exception as exc:
                ok = False
                self._resource(run, step.old, "UPDATE_FAILED", _message(exc))
        stack.template_text, stack.parameters = prior.template_text, prior.parameters
        stack.resolved, stack.outputs = prior.resolved, prior.outputs
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        made = [s.new for s in run.steps if s.action in ("Add", "Replace") and s.new]
        ok = await self._delete_all(run, made) and ok
        for step in run.steps:
            if step.old is not None:
                self.store.put_resource(stack.stack_id, step.old)
        for logical_id in set(self.store.resources(stack.stack_id)) - set(run.before):
            self.store.drop_resource(stack.stack_id, logical_id)  # added, or failed to be
        self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE" if ok else "UPDATE_ROLLBACK_FAILED")

    # -- delete ----------------------------------------------------------------------------

    async def delete(self, stack: StackRecord) -> None:
        run = Run(stack, dict(self.store.resources(stack.stack_id)))
        self.set_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
        ok = await self._delete_all(run, list(run.live.values()))
        if not ok:
            self.set_status(stack, "DELETE_FAILED", "The following resource(s) failed to "
                            "delete: [" + ", ".join(sorted(
                                r.logical_id for r in run.live.values()
                                if r.status == "DELETE_FAILED")) + "].")
            return
        stack.deleted_at = self.clock.now()
        self.set_status(stack, "DELETE_COMPLETE")

    async def _delete_all(self, run: Run, records: list[ResourceRecord]) -> bool:
        """Delete `records` in reverse dependency order; False if any failed."""
        by_id = {r.logical_id: r for r in records}
        order = _reverse_order(run.stack, by_id)
        ok = True
        for logical_id in order:
            rec = by_id[logical_id]
            retain = _deletion_policy(run.stack, logical_id) == "Retain"
            if rec.physical_id is None:
                self._resource(run, rec, "DELETE_COMPLETE")
                continue
            if retain:
                self._resource(run, rec, "DELETE_SKIPPED")
                continue
            self._resource(run, rec, "DELETE_IN_PROGRESS")
            try:
                await self.providers[rec.type].delete(
                    self.context(run.stack, logical_id),
                    Made(rec.physical_id, rec.attributes), rec.properties)
            except Exception as exc:
                ok = False
                self._resource(run, rec, "DELETE_FAILED", _message(exc))
                continue
            self._resource(run, rec, "DELETE_COMPLETE")
        return ok


class _ResourceFailed(Exception):
    def __init__(self, *logical_ids: str) -> None:
        super().__init__(*logical_ids)
        self.logical_ids = logical_ids

    def stack_reason(self, verb: str) -> str:
        return f"The following resource(s) failed to {verb}: [{', '.join(self.logical_ids)}]."


def _reverse_order(stack: StackRecord, records: Mapping[str, ResourceRecord]) -> list[str]:
    """Dependents first, by the stack's template where it still parses; the records' own
    order otherwise."""
    try:
        template = parse_template(stack.template_text)
        decls = {n: d for n, d in template.resources.items() if n in records}
        order = creation_order(dependencies(decls))
    except TideserveError:
        order = []
    rest = [n for n in records if n not in order]
    return list(reversed(order + rest))


def _deletion_policy(stack: StackRecord, logical_id: str) -> str:
    try:
        decl = parse_template(stack.template_text).resources.get(logical_id)
    except TideserveError:
        return "Delete"
    return decl.deletion_policy if decl else "Delete"


def _clean(value: Any) -> Any:
    return {} if value is NO_VALUE else value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TideserveError) else f"Internal failure: {exc}"
