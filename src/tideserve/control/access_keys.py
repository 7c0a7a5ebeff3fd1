"""Access keys: ids in the clear, secrets sealed (control/secret_box.py) in `access_keys`."""

from __future__ import annotations

import configparser
import logging
import secrets
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select, update

from tideserve.control import tables as t
from tideserve.control.secret_box import SecretBox, is_sealed
from tideserve.state_files import PRIVATE_FILE, tighten, write_private_file

log = logging.getLogger("tideserve")


class AccessKeys:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret SigV4 needs to recompute a signature; None for an unknown key or one
        that does not unseal (sealed under another key file)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.access_keys.c.secret_access_key).where(
                    t.access_keys.c.access_key_id == access_key_id
                )
            ).first()
        return self.box.open(access_key_id, row[0]) if row else None

    def user_of(self, access_key_id: str) -> str | None:
        """The user name a key was issued to (STS GetCallerIdentity names it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.access_keys.c.user).where(t.access_keys.c.access_key_id == access_key_id)
            ).first()
        return str(row[0]) if row else None

    def first_issued(self) -> float | None:
        """When the oldest key was issued: the server's state was made then."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(t.access_keys.c.creation_time))).scalar()
        return float(value) if value is not None else None

    def create(self, user: str, now: float) -> tuple[str, str]:
        key_id = "AKIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.access_keys).values(
                    access_key_id=key_id,
                    secret_access_key=self.box.seal(key_id, secret),
                    user=user,
                    creation_time=now,
                )
            )
        return key_id, secret

    def delete(self, access_key_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(t.access_keys).where(t.access_keys.c.access_key_id == access_key_id))
        return bool(done.rowcount)

    def issued(self) -> list[tuple[str, str, float]]:
        """(key id, user, creation time) of every key, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.access_keys.c.access_key_id, t.access_keys.c.user,
                       t.access_keys.c.creation_time).order_by(t.access_keys.c.creation_time)
            ).all()
        return [(str(k), str(u), float(c)) for k, u, c in rows]

    def usable(self, access_key_id: str) -> bool:
        return self.secret_for(access_key_id) is not None

    def seal_plaintext(self) -> int:
        """Seal the secrets an older tideserve stored in the clear; return how many.

        On SQLite the old bytes must not linger either: secure_delete zeroes the space the
        plaintext cells leave on their pages, and a TRUNCATE checkpoint empties the WAL that
        held the pages' previous versions."""
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.begin() as conn:
            if sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            rows = conn.execute(
                select(t.access_keys.c.access_key_id, t.access_keys.c.secret_access_key)
            ).all()
            plain = [(key_id, stored) for key_id, stored in rows if not is_sealed(stored)]
            for key_id, stored in plain:
                conn.execute(
                    update(t.access_keys)
                    .where(t.access_keys.c.access_key_id == key_id)
                    .values(secret_access_key=self.box.seal(key_id, stored))
                )
        if plain and sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if plain:
            log.info("sealed %d plaintext access key secret(s) in the database", len(plain))
        return len(plain)


def ensure_credentials(keys: AccessKeys, path: Path, region: str, now: float) -> None:
    """Keep the credentials file `tideserve up` writes for clients, or write a new one with a
    new admin key when it is missing or names a key the database cannot unseal (e.g. the
    key file was replaced)."""
    if path.exists():
        parser = configparser.ConfigParser()
        parser.read(path)
        key_id = parser.get("default", "aws_access_key_id", fallback=None)
        if key_id is not None and keys.usable(key_id):
            tighten(path, PRIVATE_FILE)
            return
        log.warning("%s names no usable access key; issuing a new admin key", path)
    key_id, secret = keys.create("admin", now)
    text = (
        f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        f"region = {region}\n"
    )
    write_private_file(path, text.encode())
