"""Why a script failed, worded as SageMaker's FailureReason.

The platform takes the first 1024 characters of /opt/ml/output/failure when the algorithm
wrote one; the training toolkit writes there, for a script that exits non-zero,
`ExecuteUserScriptError:\\nExitCode <n>\\nErrorMessage "<stderr>"\\nCommand "<cmd>"`, and the
platform prefixes `AlgorithmError: ` (spec §4.4). We run the script without the toolkit, so
we write the same text ourselves, with the error line of the script's last traceback (the
last unindented line of its output) as the message.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

MAX_REASON_CHARS = 1024
_TAIL_BYTES = 64 * 1024


def failure_reason(log: Path, offset: int, failure_file: Path, exit_code: int | None,
                   argv: Sequence[str]) -> str:
    written = _read(failure_file)
    if written:
        return ("AlgorithmError: " + written)[:MAX_REASON_CHARS]
    message = error_line(_tail(log, offset))
    command = shlex.join(["python", *argv[1:]])
    reason = (f"AlgorithmError: ExecuteUserScriptError:\nExitCode {exit_code}\n"
              f'ErrorMessage "{message}"\nCommand "{command}"')
    return reason[:MAX_REASON_CHARS]


def error_line(output: str) -> str:
    """The exception a traceback ends with ('ValueError: no rows'), else the last line."""
    lines = [ln.rstrip() for ln in output.splitlines()
             if ln.strip() and not ln.startswith("[tideserve]")]
    for line in reversed(lines):
        if not line[:1].isspace() and not line.startswith("Traceback"):
            return line
    return lines[-1].strip() if lines else ""


def _tail(log: Path, offset: int) -> str:
    try:
        with open(log, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(offset, size - _TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""
