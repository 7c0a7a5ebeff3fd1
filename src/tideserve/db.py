"""One SQLAlchemy MetaData for every table, so one engine (SQLite by default, PostgreSQL by
URL) holds all of tideserve's state. Each package declares its tables on `metadata` in its own
tables.py; `tideserve.schema.create_all` (wiring) creates them all. This module imports no
package of ours, so every package may use it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event

from tideserve.state_files import PRIVATE_FILE, create_private_file, tighten

metadata = MetaData()


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'tideserve.db').resolve()}"


def create_sqlite_files(state_dir: Path) -> None:
    """Create the database file 0600 before SQLite opens it: SQLite gives the -wal and -shm
    files it creates later the database file's own mode, so all three stay private."""
    database = state_dir / "tideserve.db"
    create_private_file(database)
    for suffix in ("-wal", "-shm"):
        tighten(database.with_name(database.name + suffix), PRIVATE_FILE)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the metrics flush and the control plane write without blocking readers.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine
