"""Golden trace: the checked-in Azure segment (tests/data) with three policy sets; its
decisions (every scaling activity: time, capacity, status, cause) and its costs, SLO shares
and latencies are diffed exactly against tests/data/golden_azure_code.json.

A change that moves them on purpose (a fix in the engine, the metrics or the fluid model)
refreshes the file deliberately — and the diff is reviewed like code:

    TIDESERVE_REFRESH_GOLDEN=1 .venv/bin/python -m pytest tests/sim/test_golden.py
    git diff tests/data/golden_azure_code.json
"""

from __future__ import annotations

import difflib
import json
import os

from tests.sim.builders import DATA
from tideserve.sim.report import summary_dict
from tideserve.sim.run import simulate
from tideserve.sim.scenario import load_scenario

EXPECTED = DATA / "golden_azure_code.json"


def test_golden_decisions_and_costs_are_unchanged() -> None:
    result = simulate(load_scenario(DATA / "golden_azure_code.yaml"))
    actual = json.dumps(summary_dict(result, timing=False), indent=2, sort_keys=True) + "\n"
    if os.environ.get("TIDESERVE_REFRESH_GOLDEN"):
        EXPECTED.write_text(actual)
    expected = EXPECTED.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        str(EXPECTED), "this run"))
    assert actual == expected, f"the golden simulation changed:\n{diff}"


def test_golden_file_records_decisions_and_the_baseline() -> None:
    golden = json.loads(EXPECTED.read_text())
    names = [p["name"] for p in golden["policy_sets"]]
    assert names == ["aws-default", "tuned-tt-and-schedule", "step"]
    assert all(p["activities"] for p in golden["policy_sets"])
    assert golden["baseline"]["over_slo_share"] < 0.01
