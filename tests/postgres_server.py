"""A throwaway PostgreSQL server for tests: Debian's binaries, initdb into a temporary
directory, listening on a free loopback port and a unix socket in that directory, stopped and
removed afterwards. initdb refuses to run as root, so as root the server runs as the
`postgres` user the Debian package creates (the directory is chowned to it)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support import free_port


def postgres_bin() -> Path | None:
    """Where initdb and pg_ctl are: PATH first, then Debian's versioned directory."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name), reverse=True)
    return Path(found[0]).parent if found else None


MISSING = ("PostgreSQL server binaries (initdb, pg_ctl) not found: "
           "`make postgres` (apt-get install postgresql) installs them")


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    if user is None:
        return cmd
    return ["runuser", "-u", user, "--", *cmd]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a SQLAlchemy URL (psycopg 3) for a fresh database `tideserve`."""
    bindir = postgres_bin()
    assert bindir is not None, MISSING
    user = None
    root = Path(tempfile.mkdtemp(prefix="tideserve-pg-"))
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", free_port()
    try:
        subprocess.run(_as_user([str(bindir / "initdb"), "-D", str(data), "-U", "tideserve",
                                 "--auth=trust", "-E", "UTF8", "--no-sync"], user),
                       check=True, capture_output=True)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(_as_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                 "-l", str(root / "log"), "-w", "-t", "30", "start"], user),
                       check=True, capture_output=True)
        try:
            subprocess.run(_as_user([str(bindir / "createdb"), "-h", str(root), "-p", str(port),
                                     "-U", "tideserve", "tideserve"], user),
                           check=True, capture_output=True)
            yield f"postgresql+psycopg://tideserve@127.0.0.1:{port}/tideserve"
        finally:
            subprocess.run(_as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                     "-w", "stop"], user), capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
