"""Where the router's time goes at c=8: a sampling profile (py-spy) of `tideserve up` while the
load generator drives an LR endpoint through it, printed as the functions that hold the most
samples, by own time and by time including callees. Prints figures; asserts nothing.

    .venv/bin/python bench/profile_router.py [--seconds 15] [--concurrency 8] [--top 25]
        [--py-spy PATH]

py-spy is a tool, not a dependency: `pip install py-spy` (anywhere) or pass --py-spy. The
server and its instance are pinned to CPU 1 and the load generator to CPU 0, as in
bench/serving.py's one-core mode, so the profile is that of the configuration it measures.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving import (  # noqa: E402
    LOAD_CPU,
    SERVER_CPU,
    can_pin,
    deploy,
    load,
    signed_headers,
)
from tests.support import (  # noqa: E402
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)


def frames_of(line: str) -> tuple[list[str], int]:
    """One py-spy raw (collapsed) line: `thread;frame;frame... count` -> (frames, count)."""
    stack, _, count = line.rpartition(" ")
    return stack.split(";")[1:], int(count)


def summarise(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = frames_of(line)
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples of the server process (all threads, idle excluded)\n")
    for title, counter in (("own time", own), ("including callees", inclusive)):
        print(f"top {top} by {title}:")
        for frame, count in counter.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {frame}")
        print()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    a = ap.parse_args()
    pinned = can_pin()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, X = train_breast_cancer("logistic")
        archive = pack_skops(model, tmp / "lr")
        body_file = tmp / "lr.csv"
        body_file.write_bytes(csv_rows(X[:1]).encode())
        if pinned:  # the server and its instance inherit CPU 1 from here
            os.sched_setaffinity(0, {SERVER_CPU})
        server = start_server(tmp / "state", period=5.0)
        try:
            deploy(server, "profile-lr", archive, {})
            url = f"{server.url}/endpoints/profile-lr/invocations"
            headers = signed_headers(url, body_file.read_bytes(), server.state_dir)
            raw = tmp / "profile.txt"
            spy = subprocess.Popen(
                [a.py_spy, "record", "--pid", str(server.proc.pid), "--format", "raw",
                 "--output", str(raw), "--duration", str(int(a.seconds)), "--rate", "250",
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            r = load(url, body_file, headers, a.concurrency, a.seconds,
                     LOAD_CPU if pinned else None)
            spy.wait(timeout=a.seconds + 60)
            print(f"router c={a.concurrency}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms "
                  f"p99 {r['p99_ms']:.2f} ms errors {r['errors']:.0f}\n")
            if not raw.exists():
                err = spy.stderr.read().decode() if spy.stderr else ""
                sys.exit(f"py-spy wrote no profile: {err.strip()}")
            summarise(raw, a.top)
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
