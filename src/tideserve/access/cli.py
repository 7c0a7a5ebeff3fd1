"""`tideserve keys ...`: users, access keys and their policies, through the `iam` API (each
command is the boto3 calls a user would make, signed with the credentials file's admin key).

    tideserve keys create --user NAME [--policy FILE|admin|read-only|invoke-only]
                          [--endpoint NAME ...]     (invoke-only: these endpoints; default all)
    tideserve keys list
    tideserve keys disable KEY_ID
    tideserve keys enable KEY_ID
    tideserve keys delete KEY_ID
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from tideserve.access.presets import PRESETS, preset_policy
from tideserve.client import client, default_url


def add_keys_parser(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="access keys, their users and permissions (IAM)")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="issue a key for a user (made if missing)")
    create.add_argument("--user", required=True)
    create.add_argument("--policy", default=None,
                        help=f"an IAM policy JSON file, or one of {', '.join(PRESETS)} "
                             "(default: none, so the key may only ask who it is)")
    create.add_argument("--endpoint", action="append", default=[],
                        help="invoke-only: an endpoint the key may invoke (repeatable)")
    sub.add_parser("list", help="every key: user, status, created, policies")
    for name, helptext in (("disable", "make a key Inactive (its requests fail)"),
                           ("enable", "make an Inactive key Active again"),
                           ("delete", "delete a key")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("key_id")
    for p in sub.choices.values():
        p.add_argument("--url", default=default_url())
        p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))


def run_keys(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    iam = client("iam", args.url, args.state_dir)
    command = args.keys_command
    if command == "create":
        return _create(iam, args, out)
    if command == "list":
        return _list(iam, out)
    owner = _owner(iam, args.key_id)
    if command == "delete":
        iam.delete_access_key(UserName=owner, AccessKeyId=args.key_id)
    else:
        status = "Inactive" if command == "disable" else "Active"
        iam.update_access_key(UserName=owner, AccessKeyId=args.key_id, Status=status)
    print(f"{args.key_id}: {command}d", file=out)
    return 0


def _policy_document(args: argparse.Namespace) -> tuple[str, str] | None:
    """(policy name, document) for --policy, or None."""
    if args.policy is None:
        if args.endpoint:
            raise ValueError("--endpoint goes with --policy invoke-only")
        return None
    if args.policy in PRESETS:
        return f"tideserve-{args.policy}", preset_policy(args.policy, args.endpoint)
    path = Path(args.policy)
    return path.stem, path.read_text()


def _create(iam: Any, args: argparse.Namespace, out: TextIO) -> int:
    policy = _policy_document(args)
    try:
        iam.create_user(UserName=args.user)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    if policy is not None:
        iam.put_user_policy(UserName=args.user, PolicyName=policy[0], PolicyDocument=policy[1])
    key = iam.create_access_key(UserName=args.user)["AccessKey"]
    print(f"user                  {key['UserName']}", file=out)
    print(f"aws_access_key_id     {key['AccessKeyId']}", file=out)
    print(f"aws_secret_access_key {key['SecretAccessKey']}", file=out)
    print("(the secret is shown once; keep it now)", file=out)
    return 0


def _list(iam: Any, out: TextIO) -> int:
    rows = [("KEY", "USER", "STATUS", "CREATED", "POLICIES")]
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            name = user["UserName"]
            policies = ",".join(iam.list_user_policies(UserName=name)["PolicyNames"]) or "-"
            for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                created = key["CreateDate"].strftime("%Y-%m-%dT%H:%M:%SZ")
                rows.append((key["AccessKeyId"], name, key["Status"], created, policies))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
              file=out)
    return 0


def _owner(iam: Any, key_id: str) -> str:
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            keys = iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
            if any(k["AccessKeyId"] == key_id for k in keys):
                return str(user["UserName"])
    raise ValueError(f"no access key {key_id}")
