"""Live endpoints know their cost: instance-seconds billed per second from start request to
stop, reported through Cost Explorer's GetCostAndUsage (grouped by tag) and `tideserve costs`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer
from tideserve.cost.catalog import Catalog

pytestmark = pytest.mark.integration


def test_cost_by_tag_and_day_through_cost_explorer_and_the_cli(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm, ce = server.client("sagemaker"), server.client("ce")
    deploy(sm, "billed", str(archive), count=2)
    wait_in_service(sm, "billed")
    arn = sm.describe_endpoint(EndpointName="billed")["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "fraud"}])
    time.sleep(3)
    today = datetime.now(UTC).date()
    resp = ce.get_cost_and_usage(
        TimePeriod={"Start": today.isoformat(), "End": (today + timedelta(days=1)).isoformat()},
        Granularity="DAILY", Metrics=["UnblendedCost", "UsageQuantity"],
        GroupBy=[{"Type": "TAG", "Key": "team"}],
    )
    groups = {g["Keys"][0]: g["Metrics"] for g in resp["ResultsByTime"][0]["Groups"]}
    fraud = groups["team$fraud"]
    hours = float(fraud["UsageQuantity"]["Amount"])
    cost = float(fraud["UnblendedCost"]["Amount"])
    # Two ml.m5.large instances for at least 3 s each, billed per second.
    assert hours >= 2 * 3 / 3600
    rate = Catalog.default().get("ml.m5.large").on_demand_hourly_usd
    assert cost == pytest.approx(hours * rate, rel=1e-6)

    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(server.state_dir / "credentials")}
    out = subprocess.run(
        [sys.executable, "-m", "tideserve.cli", "costs", "--by", "tag:team", "--days", "1",
         "--url", server.url, "--state-dir", str(server.state_dir)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "fraud" in out.stdout
