"""The simulator's world needs no database: importing tideserve.sim and building a policy
set's world through the live AAS and CloudWatch handlers loads neither SQLAlchemy nor
tideserve.db nor any package's tables (which register themselves on import). Checked in a
fresh interpreter, since this test process has imported all of them already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tideserve

PROGRAM = """
import json, sys
import tideserve.sim
from tideserve.sim.engine_adapter import PolicySet, build_world
world = build_world(PolicySet(
    "tt", {"MinCapacity": 1, "MaxCapacity": 4},
    put_scaling_policy=({"PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
                         "TargetTrackingScalingPolicyConfiguration": {
                             "TargetValue": 70.0, "PredefinedMetricSpecification": {
                                 "PredefinedMetricType":
                                     "SageMakerVariantInvocationsPerInstance"}}},)),
    "ep", "AllTraffic", 2, 1_700_000_040.0)
print(json.dumps({"alarms": len(world.alarms), "modules": sorted(sys.modules)}))
"""


def test_building_the_simulators_world_imports_no_database() -> None:
    src = os.path.dirname(os.path.dirname(tideserve.__file__))
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         env=env, timeout=60, check=True)
    seen = json.loads(out.stdout)
    assert seen["alarms"] == 2  # the world is real: AlarmHigh and AlarmLow were created
    modules = seen["modules"]
    assert "tideserve.sim.run" in modules  # the whole simulator was imported
    database = [m for m in modules if m.split(".")[0] == "sqlalchemy" or m == "tideserve.db"
                or m.endswith(".tables") or m == "sqlite3"]
    assert database == []
