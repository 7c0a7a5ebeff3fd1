"""Policy rehearsal: run scaling policy sets, written as the boto3 calls take them, against a
traffic trace on simulated time with the live scaling engine, and compare their cost and SLO
with a clairvoyant baseline.

    from tideserve.sim import load_scenario, simulate
    result = simulate(load_scenario("examples/scenarios/azure_code_target_tracking.yaml"))
"""

from tideserve.sim.result import PolicyRun, SimResult, Summary
from tideserve.sim.run import simulate
from tideserve.sim.scenario import Scenario, load_scenario, scenario_from_dict

__all__ = ["PolicyRun", "Scenario", "SimResult", "Summary", "load_scenario",
           "scenario_from_dict", "simulate"]
