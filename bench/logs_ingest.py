"""How fast the log ingester takes up what instances print, and how fast the logs API reads
it back: lines/s the file ingester sustains (files written in bursts, polled as the server
polls them), then FilterLogEvents and a Logs Insights count over everything ingested. On a
fresh SQLite file in a temporary state dir; prints figures, asserts nothing.
Run: .venv/bin/python bench/logs_ingest.py [--files 4] [--lines 50000]"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tideserve.clock import WallClock
from tideserve.db import create_sqlite_files, make_engine, sqlite_url
from tideserve.logs import names
from tideserve.logs.service import Logs
from tideserve.schema import create_all

LINE = ("2026-12-04 18:48:31,091 INFO tideserve.instance request {i} served in 4.2 ms "
        "for AllTraffic with status 200\n")
TRACEBACK = "Traceback (most recent call last):\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4, help="instances writing at once")
    parser.add_argument("--lines", type=int, default=50_000, help="lines per file")
    parser.add_argument("--burst", type=int, default=5_000, help="lines written per poll")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        create_sqlite_files(state)
        engine = make_engine(sqlite_url(state))
        create_all(engine)
        logs = Logs(engine, WallClock(), "us-east-1", "123456789012")
        paths = [state / f"ep-{n}.log" for n in range(args.files)]
        for n, path in enumerate(paths):
            path.touch()
            logs.follow(path, names.endpoint_instance("bench", "AllTraffic", f"ep-{n}"))
        ingest(logs, paths, args.lines, args.burst)
        read_back(logs, args.files * args.lines)
        idle_poll(logs, state)


def idle_poll(logs: Logs, state: Path, files: int = 100) -> None:
    """The server's standing cost: a poll that finds nothing new (a stat per file)."""
    for n in range(files):
        path = state / f"idle-{n}.log"
        path.touch()
        logs.follow(path, names.endpoint_instance("idle", "AllTraffic", f"idle-{n}"))
    began = time.perf_counter()
    for _ in range(20):
        logs.ingester.poll()
    each = (time.perf_counter() - began) / 20
    print(f"an idle poll of {len(logs.ingester.followed())} followed files: "
          f"{each * 1000:.2f} ms ({each * 4 * 100:.2f}% of a core at 4 polls/s)")


def ingest(logs: Logs, paths: list[Path], lines: int, burst: int) -> None:
    written = 0
    busy = 0.0
    size = 0
    for start in range(0, lines, burst):
        for path in paths:
            chunk = "".join(TRACEBACK if i % 1000 == 0 else LINE.format(i=i)
                            for i in range(start, min(lines, start + burst)))
            with open(path, "a") as f:
                f.write(chunk)
            size += len(chunk)
            written += min(lines, start + burst) - start
        began = time.perf_counter()
        logs.ingester.poll()
        busy += time.perf_counter() - began
    print(f"ingested {written:,} lines ({size / 2**20:.1f} MiB) from {len(paths)} files in "
          f"{busy:.2f} s of polling: {written / busy:,.0f} lines/s, "
          f"{size / 2**20 / busy:.1f} MiB/s")


def read_back(logs: Logs, total: int) -> None:
    group = "/aws/sagemaker/Endpoints/bench"
    for pattern in ("Traceback", '"status 200" -Traceback', '{ $.level = "ERROR" }'):
        began = time.perf_counter()
        found = pages = 0
        token = None
        while True:
            params = {"logGroupName": group, "filterPattern": pattern,
                      **({"nextToken": token} if token else {})}
            page = logs.api.filter_log_events(params)
            found += len(page["events"])
            pages += 1
            token = page.get("nextToken")
            if token is None:
                break
        took = time.perf_counter() - began
        print(f"FilterLogEvents {pattern!r}: {found:,} of {total:,} events in {pages} pages, "
              f"{took:.2f} s ({total / took:,.0f} events scanned/s)")
    now = int(time.time())
    began = time.perf_counter()
    query_id = logs.api.start_query({
        "logGroupName": group, "startTime": now - 3600, "endTime": now + 60,
        "queryString": "filter @message like /Traceback/ | stats count(*) by bin(5m)"})["queryId"]
    while (result := logs.api.get_query_results({"queryId": query_id}))["status"] != "Complete":
        time.sleep(0.01)
    took = time.perf_counter() - began
    print(f"Insights count by bin(5m) over {total:,} events: {took:.2f} s "
          f"({total / took:,.0f} records/s), rows {result['results']}")


if __name__ == "__main__":
    main()
