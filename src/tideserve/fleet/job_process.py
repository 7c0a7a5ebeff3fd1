"""A job's work as a local OS process, started like an instance (fleet/local.py): its own
process group, asked to die with the server, output appended to a log file.

Jobs (training) run a user's command to its end rather than serve at a URL, so this is the
smaller half of LocalProcessProvider: start, poll, signal, kill.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tideserve.fleet.local import _child_setup, _signal_group


class JobProcess:
    """Start it from the event loop's thread, not a worker thread: PR_SET_PDEATHSIG fires when
    the thread that forked the child exits, so a pool thread's exit would kill the job."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str],
                 log_path: Path, memory_bytes: int | None = None) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=lambda: _child_setup(memory_bytes),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        """SIGTERM to the whole group (the script and anything it started)."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait()
