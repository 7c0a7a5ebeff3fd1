"""`tideserve db upgrade` / `tideserve db current`: the schema's Alembic revision, outside a
running server (`tideserve up` upgrades by itself before it serves)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tideserve.cluster.migrate import current_revision, head_revision, upgrade
from tideserve.db import create_sqlite_files, make_engine, sqlite_url


def add_db_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "db", help="the state database's schema: upgrade it, or print its revision")
    p.add_argument("action", choices=("upgrade", "current"))
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite)")
    return p


def run_db(args: argparse.Namespace) -> int:
    if args.database_url is None:
        args.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_sqlite_files(args.state_dir)
    engine = make_engine(args.database_url or sqlite_url(args.state_dir))
    try:
        if args.action == "upgrade":
            upgrade(engine)
        print(f"revision {current_revision(engine)} (head {head_revision()})")
    finally:
        engine.dispose()
    return 0
