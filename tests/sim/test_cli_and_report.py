"""`tideserve simulate` end to end on the golden scenario: the table, summary.json and the
three plots; and the speed smoke test (prints the figure, asserts nothing about time)."""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.sim.builders import DATA
from tideserve.sim.cli import add_simulate_parser, run_simulate
from tideserve.sim.run import run_policy_set
from tideserve.sim.scenario import load_scenario


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simulate", *argv])


def test_simulate_prints_the_table_and_writes_summary_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # a dependency the lead adds: matplotlib>=3.8
    out = io.StringIO()
    code = run_simulate(parse(str(DATA / "golden_azure_code.yaml"), "--out", str(tmp_path)), out)
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["POLICY", "SET", "COST_USD"]
    assert [line.split()[0] for line in lines[1:5]] == [
        "aws-default", "tuned-tt-and-schedule", "step", "clairvoyant"]
    assert lines[4].split()[2] == "1.00x"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["policy_sets"][0]["cost_ratio_to_baseline"] > 0
    for name in ("load_capacity.png", "latency.png", "cost.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_reports_a_refused_policy_and_exits_2(tmp_path: Path) -> None:
    text = (DATA / "golden_azure_code.yaml").read_text().replace(
        "SageMakerVariantInvocationsPerInstance", "SageMakerVariantLatency", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("path: azure", f"path: {DATA}/azure"))
    assert run_simulate(parse(str(bad), "--no-plots", "--out", str(tmp_path)), io.StringIO()) == 2


def test_speed_smoke_a_day_of_one_second_bins() -> None:
    """Not a timing assertion: prints the figure (bench/simulate.py reports the month)."""
    scn = load_scenario(DATA / "golden_azure_code.yaml")
    day = replace(scn, trace=scn.trace.tiled(86400))
    arrivals = day.arrivals()
    started = time.perf_counter()
    run = run_policy_set(day, day.policy_sets[0], arrivals)
    took = time.perf_counter() - started
    print(f"\n1 day of 1-s steps ({len(arrivals)} steps), one policy set: {took:.2f} s")
    assert run.summary.requests == float(np.sum(arrivals))
    assert run.scaling_activities > 0
