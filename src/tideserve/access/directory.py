"""IAM's state: users, their access keys (control/access_keys.py keeps the sealed secrets) and
their inline policies, with IAM's rules — names unique case-insensitively, two keys per user
(Inactive ones count), a user deleted only once its keys and policies are, 2,048
non-whitespace characters of inline policy per user. Every change calls the listeners, which
drop the caches built on this state (the server's key cache, the decision cache)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from tideserve.access import tables as t
from tideserve.access.policy import Policy, parse_policy
from tideserve.control.access_keys import AccessKeys
from tideserve.errors import AlreadyExistsError, ConflictError, LimitExceededError, NotFoundError

KEYS_PER_USER = 2
INLINE_POLICY_CHARS = 2048  # per user, whitespace not counted
ADMIN_POLICY_NAME = "AdministratorAccess"
ADMIN_POLICY = ('{"Version":"2012-10-17","Statement":'
                '[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class User:
    name: str
    user_id: str
    path: str
    create_date: float
    arn: str


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user: str
    status: str  # Active | Inactive
    create_date: float


@dataclass(frozen=True)
class Principal:
    """Who a key speaks for, with the policies that decide what it may do."""

    user: User
    access_key_id: str
    policies: tuple[Policy, ...]


def stable_user_id(name: str) -> str:
    """The id a user of an older tideserve had (derived from its name), so that upgrading
    does not change what GetCallerIdentity answers."""
    return "AIDA" + hashlib.sha256(name.encode()).hexdigest().upper()[:17]


def new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


class Directory:
    def __init__(self, engine: Engine, keys: AccessKeys, account: str) -> None:
        self.engine = engine
        self.keys = keys
        self.account = account
        self.listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def arn(self, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account}:user{path}{name}"

    # -- users ---------------------------------------------------------------------------------

    def adopt_key_owners(self, now: float) -> None:
        """Users named by keys issued before tideserve had IAM become IAM users with
        administrator access, since their keys could do everything then."""
        for _, name, created in self.keys.issued():
            if self.get_user(name) is None:
                self._insert_user(name, "/", stable_user_id(name), created or now)
                self.put_policy(name, ADMIN_POLICY_NAME, ADMIN_POLICY)

    def create_user(self, name: str, path: str, now: float) -> User:
        if self.get_user(name) is not None:
            raise AlreadyExistsError(f"User with name {name} already exists.",
                                     code="EntityAlreadyExists")
        user = self._insert_user(name, path, new_user_id(), now)
        self._changed()
        return user

    def _insert_user(self, name: str, path: str, user_id: str, now: float) -> User:
        with self.engine.begin() as conn:
            conn.execute(insert(t.iam_users).values(
                name_lower=name.lower(), name=name, user_id=user_id, path=path, create_date=now))
        return User(name, user_id, path, now, self.arn(name, path))

    def get_user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.iam_users).where(
                t.iam_users.c.name_lower == name.lower())).first()
        if row is None:
            return None
        return User(row.name, row.user_id, row.path, row.create_date, self.arn(row.name, row.path))

    def user(self, name: str) -> User:
        found = self.get_user(name)
        if found is None:
            raise NotFoundError(f"The user with name {name} cannot be found.",
                                code="NoSuchEntity")
        return found

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.iam_users).order_by(t.iam_users.c.name_lower)).all()
        return [User(r.name, r.user_id, r.path, r.create_date, self.arn(r.name, r.path))
                for r in rows]

    def delete_user(self, name: str) -> None:
        user = self.user(name)
        if self.keys_of(user.name):
            raise ConflictError("Cannot delete entity, must delete access keys first.",
                                code="DeleteConflict")
        if self.policy_names(user.name):
            raise ConflictError("Cannot delete entity, must delete policies first.",
                                code="DeleteConflict")
        with self.engine.begin() as conn:
            conn.execute(delete(t.iam_users).where(t.iam_users.c.name_lower == name.lower()))
        self._changed()

    # -- access keys ---------------------------------------------------------------------------

    def create_key(self, user_name: str, now: float) -> tuple[AccessKey, str]:
        user = self.user(user_name)
        if len(self.keys_of(user.name)) >= KEYS_PER_USER:
            raise LimitExceededError(
                f"Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}",
                code="LimitExceeded")
        key_id, secret = self.keys.create(user.name, now)
        self._changed()
        return AccessKey(key_id, user.name, "Active", now), secret

    def keys_of(self, user_name: str) -> list[AccessKey]:
        return [k for k in self.all_keys() if k.user.lower() == user_name.lower()]

    def all_keys(self) -> list[AccessKey]:
        with self.engine.connect() as conn:
            statuses: dict[str, str] = {
                str(k): str(v) for k, v in conn.execute(select(t.access_key_status)).all()}
        return [AccessKey(key_id, user, statuses.get(key_id, "Active"), created)
                for key_id, user, created in self.keys.issued()]

    def key(self, key_id: str, user_name: str | None = None) -> AccessKey:
        found = next((k for k in self.all_keys() if k.access_key_id == key_id), None)
        if found is None or (user_name is not None and found.user.lower() != user_name.lower()):
            raise NotFoundError(f"The Access Key with id {key_id} cannot be found.",
                                code="NoSuchEntity")
        return found

    def key_status(self, key_id: str) -> str:
        with self.engine.connect() as conn:
            status = conn.execute(select(t.access_key_status.c.status).where(
                t.access_key_status.c.access_key_id == key_id)).scalar()
        return str(status) if status else "Active"

    def set_key_status(self, key_id: str, status: str, user_name: str | None = None) -> None:
        self.key(key_id, user_name)
        with self.engine.begin() as conn:
            conn.execute(delete(t.access_key_status).where(
                t.access_key_status.c.access_key_id == key_id))
            conn.execute(insert(t.access_key_status).values(access_key_id=key_id, status=status))
        self._changed()

    def delete_key(self, key_id: str, user_name: str | None = None) -> None:
        self.key(key_id, user_name)
        self.keys.delete(key_id)
        with self.engine.begin() as conn:
            conn.execute(delete(t.access_key_status).where(
                t.access_key_status.c.access_key_id == key_id))
        self._changed()

    # -- inline policies -----------------------------------------------------------------------

    def put_policy(self, user_name: str, policy_name: str, document: str) -> None:
        user = self.user(user_name)
        parse_policy(document)  # MalformedPolicyDocument before anything is stored
        others = sum(_size(self.get_policy(user.name, n)) for n in self.policy_names(user.name)
                     if n != policy_name)
        if others + _size(document) > INLINE_POLICY_CHARS:
            raise LimitExceededError(
                f"Maximum policy size of {INLINE_POLICY_CHARS} bytes exceeded for user "
                f"{user.name}", code="LimitExceeded")
        key = user.name.lower()
        with self.engine.begin() as conn:
            conn.execute(delete(t.iam_user_policies).where(
                (t.iam_user_policies.c.user_lower == key)
                & (t.iam_user_policies.c.policy_name == policy_name)))
            conn.execute(insert(t.iam_user_policies).values(
                user_lower=key, policy_name=policy_name, document=document))
        self._changed()

    def get_policy(self, user_name: str, policy_name: str) -> str:
        user = self.user(user_name)
        with self.engine.connect() as conn:
            document = conn.execute(select(t.iam_user_policies.c.document).where(
                (t.iam_user_policies.c.user_lower == user.name.lower())
                & (t.iam_user_policies.c.policy_name == policy_name))).scalar()
        if document is None:
            raise NotFoundError(f"The user policy with name {policy_name} cannot be found.",
                                code="NoSuchEntity")
        return str(document)

    def policy_names(self, user_name: str) -> list[str]:
        with self.engine.connect() as conn:
            names = conn.execute(select(t.iam_user_policies.c.policy_name).where(
                t.iam_user_policies.c.user_lower == user_name.lower()
            ).order_by(t.iam_user_policies.c.policy_name)).scalars().all()
        return [str(n) for n in names]

    def delete_policy(self, user_name: str, policy_name: str) -> None:
        self.get_policy(user_name, policy_name)
        with self.engine.begin() as conn:
            conn.execute(delete(t.iam_user_policies).where(
                (t.iam_user_policies.c.user_lower == user_name.lower())
                & (t.iam_user_policies.c.policy_name == policy_name)))
        self._changed()

    # -- who a key is --------------------------------------------------------------------------

    def principal(self, key_id: str) -> Principal | None:
        """The user behind an Active key and their parsed policies; None for an unknown or
        Inactive key."""
        owner = self.keys.user_of(key_id)
        if owner is None or self.key_status(key_id) != "Active":
            return None
        user = self.get_user(owner)
        if user is None:
            return None
        with self.engine.connect() as conn:
            documents = conn.execute(select(t.iam_user_policies.c.document).where(
                t.iam_user_policies.c.user_lower == user.name.lower())).scalars().all()
        return Principal(user, key_id, tuple(parse_policy(d) for d in documents))


def _size(document: str) -> int:
    return len(_WHITESPACE.sub("", document))

