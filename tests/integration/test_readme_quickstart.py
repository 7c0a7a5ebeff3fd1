"""The README's quick start, run as written: its code blocks are read from README.md itself, so
the test fails when the README drifts from what works.

From an empty folder, with nothing but the README's own commands: `tideserve up` with the
relative state dir it names, the `export` it says, `train.py` and `deploy.py` saved from its
Python blocks and run, then the CLI commands. The only change made is the port: a free one for
8080 (and $TIDESERVE_URL for the CLI, whose default is 8080). The install block is skipped:
the test runs in the installed environment. AWS variables and ~/.aws are kept away, so boto3
gets its keys only through the README's export. At the end the server is interrupted as Ctrl-C
would, and no process of its session may remain.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import RunningServer, free_port, stop_server

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    language: str  # bash | python
    text: str


def quick_start(port: int) -> list[Block]:
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    section = section[:section.index("\n## ", 1)]
    return [Block(lang, body.replace("8080", str(port))) for lang, body in FENCE.findall(section)]


def shims(folder: Path) -> Path:
    """`tideserve` and `python` on PATH, as an activated venv has them, for this interpreter."""
    folder.mkdir()
    for name, argv in (("tideserve", f"{sys.executable} -m tideserve.cli"),
                       ("python", sys.executable)):
        (folder / name).write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        (folder / name).chmod(0o755)
    return folder


def clean_env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=f"{shims(tmp / 'bin')}{os.pathsep}{env.get('PATH', '')}",
               HOME=str(tmp / "home"), TIDESERVE_URL=f"http://127.0.0.1:{port}")
    return env


def run_bash(block: Block, cwd: Path, env: dict[str, str]) -> str:
    """Runs one block with `set -euo pipefail`; what it exports carries into the next."""
    env_file = cwd.parent / "env.after"
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text + '\nenv -0 > "$0"',
                           str(env_file)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{block.text}\nexited {proc.returncode}:\n{proc.stderr}"
    env.clear()
    env.update(line.split("=", 1) for line in env_file.read_text().split("\0") if "=" in line)
    return proc.stdout


def start_up(block: Block, cwd: Path, env: dict[str, str], port: int) -> RunningServer:
    log_path = cwd.parent / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", "-c", f"exec {block.text.strip()}"], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = RunningServer(f"http://127.0.0.1:{port}", cwd / ".tideserve", proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"tideserve up exited:\n{server.log()}"
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"tideserve up did not become ready:\n{server.log()}")


def session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def predictions(stdout: str) -> list[list[int]]:
    """The JSON arrays of predictions among the output's lines."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]


def test_the_readme_quick_start_runs_as_written_from_an_empty_folder(tmp_path: Path) -> None:
    port = free_port()
    blocks = quick_start(port)
    install, up, *rest = blocks
    assert install.language == "bash" and "make install" in install.text
    assert up.language == "bash" and up.text.startswith("tideserve up ")
    assert "--state-dir .tideserve" in up.text  # relative, as a user types it
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(tmp_path, port)
    server = start_up(up, work, env, port)
    try:
        outputs = []
        for block in rest:
            if block.language == "python":  # a file to save; the first line names it
                name = re.match(r"# (\w+\.py):", block.text)
                assert name, f"a Python block must start with '# NAME.py:':\n{block.text}"
                (work / name.group(1)).write_text(block.text)
            else:
                outputs.append(run_bash(block, work, env))
        export = f"export AWS_SHARED_CREDENTIALS_FILE={work.resolve()}/.tideserve/credentials"
        assert export in server.log()  # `tideserve up` prints the line the README exports

        boto3_run, cli_run = outputs[-2], outputs[-1]
        assert len(predictions(boto3_run)) == 1 and len(predictions(boto3_run)[0]) == 3
        assert predictions(cli_run) == predictions(boto3_run)  # the same model, both ways
        assert re.search(r"^cancer-cli +InService +AllTraffic 1/1$", cli_run, re.M)
        assert re.search(r"^cancer +InService +AllTraffic 2/2$", cli_run, re.M)
        assert "Invocations:" in cli_run and "ModelLatency:" in cli_run

        os.killpg(server.proc.pid, signal.SIGINT)  # Ctrl-C in the server's terminal
        server.proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while session_processes(server.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_processes(server.proc.pid) == [], "processes left behind"
    finally:
        stop_server(server)
