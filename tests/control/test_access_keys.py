"""Access-key secrets at rest: sealed in the database, the key file apart, private files, and
an older server's plaintext rows sealed when a new one starts."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from tideserve.control import tables as t
from tideserve.control.access_keys import AccessKeys, ensure_credentials
from tideserve.control.secret_box import SecretBox, SecretKeyFileError
from tideserve.db import create_sqlite_files, make_engine, sqlite_url
from tideserve.schema import create_all
from tideserve.server import build
from tideserve.settings import Settings
from tideserve.state_files import make_private_dir

PLAINTEXT = "an-older-tideserve-stored-this-in-the-clear"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.glob("tideserve.db*"))


def old_state_dir(state: Path) -> None:
    """A state dir as a tideserve before sealing left it: plaintext row, loose modes."""
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    engine = make_engine(sqlite_url(state))
    create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(t.access_keys).values(
            access_key_id="AKIAOLDKEY", secret_access_key=PLAINTEXT, user="admin",
            creation_time=0.0))
    engine.dispose()
    (state / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIAOLDKEY\naws_secret_access_key = {PLAINTEXT}\n")
    for path in state.iterdir():
        path.chmod(0o644)


def test_the_key_file_is_created_private_and_reloaded(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "secret.key")
    assert mode(tmp_path / "secret.key") == 0o600
    sealed = box.seal("AKIA1", "s3cret")
    assert "s3cret" not in sealed
    assert SecretBox.from_key_file(tmp_path / "secret.key").open("AKIA1", sealed) == "s3cret"


def test_a_sealed_secret_opens_only_for_its_key_id_and_under_its_key(tmp_path: Path) -> None:
    box = SecretBox.from_key_file(tmp_path / "a.key")
    sealed = box.seal("AKIA1", "s3cret")
    assert box.open("AKIA2", sealed) is None  # copied onto another key's row
    assert SecretBox.from_key_file(tmp_path / "b.key").open("AKIA1", sealed) is None


def test_a_damaged_key_file_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("not a key\n")
    with pytest.raises(SecretKeyFileError):
        SecretBox.from_key_file(tmp_path / "secret.key")


def test_new_keys_are_stored_sealed(tmp_path: Path) -> None:
    make_private_dir(tmp_path / "state")
    create_sqlite_files(tmp_path / "state")
    engine = make_engine(sqlite_url(tmp_path / "state"))
    create_all(engine)
    keys = AccessKeys(engine, SecretBox.from_key_file(tmp_path / "secret.key"))
    key_id, secret = keys.create("admin", 0.0)
    with engine.connect() as conn:
        stored = conn.execute(select(t.access_keys.c.secret_access_key)).scalar_one()
    assert secret not in stored
    assert keys.secret_for(key_id) == secret
    assert keys.secret_for("AKIANOSUCHKEY") is None


def test_a_new_key_file_makes_a_new_admin_key(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    first = AccessKeys(engine, SecretBox.from_key_file(tmp_path / "one.key"))
    ensure_credentials(first, tmp_path / "credentials", "us-east-1", 0.0)
    old_id = read_credentials(tmp_path / "credentials")[0]
    second = AccessKeys(engine, SecretBox.from_key_file(tmp_path / "two.key"))
    ensure_credentials(second, tmp_path / "credentials", "us-east-1", 0.0)
    new_id, new_secret = read_credentials(tmp_path / "credentials")
    assert new_id != old_id and second.secret_for(new_id) == new_secret
    assert mode(tmp_path / "credentials") == 0o600


def read_credentials(path: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]


def test_starting_on_an_older_state_dir_seals_its_plaintext_and_tightens_its_modes(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    old_state_dir(state)
    assert PLAINTEXT.encode() in database_bytes(state)  # what a stolen copy gave away

    server = build(Settings(state_dir=state, secret_key_file=tmp_path / "elsewhere.key"))
    try:
        assert server.app.secret_for("AKIAOLDKEY") == PLAINTEXT  # the user's keys still work
        assert read_credentials(state / "credentials")[0] == "AKIAOLDKEY"
    finally:
        server.store.engine.dispose()
    assert PLAINTEXT.encode() not in database_bytes(state)
    assert mode(state) == 0o700
    assert mode(tmp_path / "elsewhere.key") == 0o600
    assert not (state / "secret.key").exists()
    for name in ("tideserve.db", "credentials"):
        assert mode(state / name) == 0o600, name
