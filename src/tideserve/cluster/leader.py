"""Which of the servers that share one database runs the controller, the autoscaler, the
async dispatcher and the job services: the one that holds the leader lock.

On PostgreSQL the lock is a session-level advisory lock held on one dedicated connection, not
a lease row with an expiry: the server releases it the moment its connection closes (a killed
process's socket is closed by the kernel, so failover waits on no expiry and no clock), and no
two sessions can hold it at once. A leader checks its connection every poll; one that lost it
(a database restart, a network cut) can no longer know it leads and must stop at once.

On SQLite (one machine by nature) the same holds with an flock on a file beside the database."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("tideserve.leader")

LEADER_LOCK = 0x7469_6465_6C65  # "tidele": the advisory lock's key, the same on every server
# About 10 s from a silent host to a free lock.
KEEPALIVE = {"tcp_keepalives_idle": 4, "tcp_keepalives_interval": 2,
             "tcp_keepalives_count": 3}


class Leadership:
    def __init__(self, engine: Engine, lock_file: Path) -> None:
        self.engine = engine
        self.lock_file = lock_file
        self.is_leader = False
        self._conn: Any = None  # the connection that holds the advisory lock
        self._fd: int | None = None

    @property
    def shared(self) -> bool:
        """True where other servers may share the state (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    def try_acquire(self) -> bool:
        """Blocking I/O: call from a thread."""
        if self.is_leader:
            return True
        if self.shared:
            self.is_leader = self._try_advisory()
        else:
            self.is_leader = self._try_flock()
        return self.is_leader

    def still_held(self) -> bool:
        """The lock is ours as long as the connection that took it is alive."""
        if not self.is_leader:
            return False
        if self._conn is None:
            return True  # flock: held until this process ends
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
        except Exception:
            log.exception("lost the connection that holds the leader lock")
            self.is_leader = False
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # closing the session releases its advisory locks
            except Exception:
                pass
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.is_leader = False

    def _try_advisory(self) -> bool:
        if self._conn is None:
            # A connection of its own, outside the pool: the lock lives as long as it does.
            self._conn = self.engine.connect()
            self._conn.detach()  # closing it ends the session (and the lock), not pooled
            # A leader whose host vanishes closes nothing: the database server finds the dead
            # TCP session by keepalive (default: after two hours), then frees the lock. These
            # are per-session settings (ignored over a unix socket).
            for name, value in KEEPALIVE.items():
                self._conn.execute(text(f"SET {name} = {int(value)}"))
        try:
            got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                          {"k": LEADER_LOCK}).scalar())
            self._conn.commit()
        except Exception:
            log.exception("could not ask for the leader lock")
            self.release()
            return False
        return got

    def _try_flock(self) -> bool:
        if self._fd is None:
            self._fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def leader_poll_seconds(period: float) -> float:
    """How often a follower asks for the lock (and a leader checks it): a few times a period,
    so a dead leader's work resumes well within two periods, and at most once a second."""
    return max(0.1, min(1.0, period / 4))
