"""A warm spare: an interpreter that has imported an instance's runtime and waits to become an
instance.

    python -m tideserve.serving.spare --runtime NAME --threads N [--lean]

Importing a framework is most of an instance's start (scikit-learn and skops ~1-3 s, torch
more; loading a small model takes milliseconds), so the local fleet keeps one spare per kind
of instance it has started (fleet/local.py) and hands the next instance of that kind to it.
The spare sets the thread limits, imports the runtime as the instance would
(runtimes.loader.import_runtime) and the server stack, then reads one JSON line on stdin:

    {"argv": [instance arguments], "env": {the instance's whole environment},
     "cwd": "...", "log": "path of the instance's log", "memory_bytes": int or null}

and becomes that instance: its output goes to the log, its environment and working directory
are the instance's, its address space is limited, and `instance.main(argv)` runs. Every
instance is still its own process, started for it and never shared; the token arrives in the
environment over the pipe, never in argv. End of input without a line: exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from typing import Any

from tideserve.serving.instance import limit_threads
from tideserve.serving.instance import main as instance_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tideserve.serving.spare", description=__doc__)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lean", action="store_true",
                        help="the models it will serve are native files without code/ "
                             "(runtimes.loader.import_runtime)")
    return parser.parse_args(argv)


def warm_up(runtime: str, lean: bool) -> None:
    """Everything an instance imports before it serves, in the order it would."""
    from tideserve.serving.runtimes.loader import import_runtime

    import_runtime(runtime, lean)
    import uvicorn  # noqa: F401

    import tideserve.serving.batching  # noqa: F401

    for optional in ("uvloop", "httptools", "threadpoolctl"):  # what instance.serve picks
        try:
            __import__(optional)
        except ImportError:
            pass


def become(assignment: dict[str, Any]) -> list[str]:
    """Take on the instance's log, environment, directory and memory limit; its argv."""
    with open(assignment["log"], "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    os.environ.clear()
    os.environ.update(assignment["env"])
    os.chdir(assignment["cwd"])
    memory = assignment.get("memory_bytes")
    if memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):
            pass
    return list(assignment["argv"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)  # before numpy is first imported, as the instance does
    warm_up(args.runtime, args.lean)
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    return instance_main(become(json.loads(line)))


if __name__ == "__main__":
    sys.exit(main())
