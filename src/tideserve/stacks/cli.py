"""`tideserve stack deploy FILE [--stack-name N] [--param K=V]` and `tideserve stack delete N`:
thin clients of the cloudformation API (deploy goes through a change set, as
`aws cloudformation deploy` does), printing the stack's events as they happen."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from tideserve.client import client, default_url

TERMINAL_SUFFIXES = ("_COMPLETE", "_FAILED")
SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}


def add_stack_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "stack", help="deploy or delete a CloudFormation stack (templates as in AWS)")
    actions = p.add_subparsers(dest="stack_command", required=True)
    deploy = actions.add_parser("deploy", help="create or update a stack from a template")
    deploy.add_argument("file", type=Path, help="the template, JSON or YAML")
    deploy.add_argument("--stack-name", help="default: the file's name without its suffix")
    deploy.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    delete = actions.add_parser("delete", help="delete a stack and everything it made")
    delete.add_argument("name")
    for action in (deploy, delete):
        action.add_argument("--url", default=default_url(),
                            help="the server (default: $TIDESERVE_URL, else "
                            "http://127.0.0.1:8080)")
        action.add_argument("--state-dir", type=Path, default=Path(".tideserve"),
                            help="the server's state dir (its credentials file)")
    return p


def run_stack(args: argparse.Namespace) -> int:
    cfn = client("cloudformation", args.url, args.state_dir)
    if args.stack_command == "delete":
        return delete_stack(cfn, args.name)
    name = args.stack_name or args.file.stem
    params = dict(kv.split("=", 1) for kv in args.param)
    return deploy_stack(cfn, args.file.read_text(), name, params)


def deploy_stack(cfn: Any, body: str, name: str, params: dict[str, str],
                 out: TextIO = sys.stdout, poll: float = 0.5) -> int:
    existing = _stack(cfn, name)
    kind = "UPDATE" if existing and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else (
        "CREATE")
    change_set = cfn.create_change_set(
        StackName=name, ChangeSetName=f"tideserve-deploy-{int(time.time())}-{secrets.token_hex(3)}",
        TemplateBody=body, ChangeSetType=kind,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    while True:
        desc = cfn.describe_change_set(ChangeSetName=change_set["Id"], StackName=name)
        if desc["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        time.sleep(poll)
    if desc["Status"] == "FAILED":
        reason = desc.get("StatusReason", "")
        if "didn't contain changes" in reason:
            print(f"No changes to deploy. Stack {name} is up to date", file=out)
            return 0
        print(f"error: the change set failed: {reason}", file=out)
        return 1
    seen = {e["EventId"] for e in _events(cfn, change_set["StackId"])}
    cfn.execute_change_set(ChangeSetName=change_set["Id"], StackName=name)
    return follow(cfn, change_set["StackId"], seen, out, poll)


def delete_stack(cfn: Any, name: str, out: TextIO = sys.stdout, poll: float = 0.5) -> int:
    stack = _stack(cfn, name)
    if stack is None:
        print(f"Stack {name} does not exist", file=out)
        return 0
    seen = {e["EventId"] for e in _events(cfn, stack["StackId"])}
    cfn.delete_stack(StackName=name)
    return follow(cfn, stack["StackId"], seen, out, poll)


def follow(cfn: Any, stack_id: str, seen: set[str], out: TextIO, poll: float,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Print each new event, oldest first, until the stack reaches a final status."""
    while True:
        for event in reversed(_events(cfn, stack_id)):
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            reason = event.get("ResourceStatusReason", "")
            print(f"{event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<45} "
                  f"{event['ResourceType']:<45} {event['LogicalResourceId']}"
                  + (f"  {reason}" if reason else ""), file=out, flush=True)
        status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        if status.endswith(TERMINAL_SUFFIXES) and "CLEANUP" not in status:
            return 0 if status in SUCCESS else 1
        sleep(poll)


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _events(cfn: Any, stack_id: str) -> list[dict[str, Any]]:
    return list(cfn.describe_stack_events(StackName=stack_id)["StackEvents"])
