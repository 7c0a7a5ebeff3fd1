"""Every example scenario runs, as its header says, from a fresh clone: `tideserve simulate
examples/scenarios/X.yaml` in the clone's root, with the traces the repository ships (a
scenario's trace path is relative to the scenario file, not to the working directory)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.yaml"))
TRACES = sorted((EXAMPLES / "traces").glob("*.csv"))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a clone holds of the examples, and nothing from outside the repository."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(EXAMPLES / "scenarios", root / "examples" / "scenarios")
    shutil.copytree(EXAMPLES / "traces", root / "examples" / "traces")
    return root


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_the_example_scenario_simulates_from_the_clone_root(clone: Path, scenario: Path) -> None:
    relative = scenario.relative_to(REPO)
    out = Path("out") / scenario.stem
    proc = subprocess.run(
        [sys.executable, "-m", "tideserve.cli", "simulate", str(relative), "--out", str(out),
         "--no-plots"],
        cwd=clone, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((clone / out / "summary.json").read_text())
    declared = [p["name"] for p in yaml.safe_load(scenario.read_text())["policy_sets"]]
    assert [p["name"] for p in summary["policy_sets"]] == declared
    assert all(p["requests"] > 0 for p in summary["policy_sets"])


def test_the_example_scenarios_use_only_traces_the_repository_ships() -> None:
    shipped = {p.name for p in TRACES}
    for scenario in SCENARIOS:
        path = yaml.safe_load(scenario.read_text())["trace"]["path"]
        assert (scenario.parent / path).resolve().parent == EXAMPLES / "traces", scenario.name
        assert Path(path).name in shipped, scenario.name


def test_each_shipped_trace_is_small_and_attributed() -> None:
    readme = (EXAMPLES / "traces" / "README.md").read_text()
    assert TRACES
    for trace in TRACES:
        assert trace.stat().st_size < 1_000_000, trace.name
        assert f"`{trace.name}`" in readme, f"{trace.name} has no source in the README"
    assert len(re.findall(r"Licence: ", readme)) >= 3  # Azure, Mooncake, ServeGen
