"""`tideserve costs` against a real API server: Cost Explorer for costs, CloudWatch for the
invocations behind cost per inference."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.cost.builders import ACCESS_KEY, ARNS, SECRET_KEY, Fleet, at, serve_registry
from tideserve.api.rpc import OperationRegistry
from tideserve.clock import FakeClock
from tideserve.cost.cli import add_costs_parser, run_costs
from tideserve.cost.explorer import CostExplorer
from tideserve.cost.ledger import Ledger
from tideserve.db import metadata
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.cloudwatch import CloudWatchMetrics
from tideserve.metrics.model import dimensions
from tideserve.metrics.store import MetricStore
from tideserve.metrics.tables import metric_datapoints, metric_series


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tideserve")
    add_costs_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["costs", *argv])


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials as `tideserve up` writes them, and no stray AWS settings from the host."""
    state = tmp_path / "state"
    state.mkdir()
    creds = state / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\n"
                     f"aws_secret_access_key = {SECRET_KEY}\nregion = us-east-1\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(state / "no-config"))
    return state


@pytest.fixture
def url(engine: Engine, ledger: Ledger, fleet: Fleet, clock: FakeClock):
    """shop/a ran an ml.m5.large all of 2024-03-10 and served 2,300 requests; shop/b an
    ml.c5.xlarge for 6 h; lab (tagged team=ml) an ml.m5.large from 03-11 00:00, running."""
    clock.set(at("2024-03-11 12:00:00"))
    fleet.run("shop", "a", "ml.m5.large", at("2024-03-10 00:00:00"), at("2024-03-11 00:00:00"))
    fleet.run("shop", "b", "ml.c5.xlarge", at("2024-03-10 06:00:00"), at("2024-03-10 12:00:00"))
    fleet.run("lab", "a", "ml.m5.large", at("2024-03-11 00:00:00"), None)
    metadata.create_all(engine, tables=[metric_series, metric_datapoints])
    aggregator = MetricAggregator(60.0, clock)
    aggregator.record("AWS/SageMaker", "Invocations",
                      dimensions(EndpointName="shop", VariantName="a"), 1.0, "None",
                      timestamp=at("2024-03-10 09:30:00"), count=2300)
    cloudwatch = CloudWatchMetrics(MetricStore(engine), aggregator, clock)
    tags = {ARNS.endpoint("lab"): {"team": "ml"}}
    registry = OperationRegistry()
    for op, handler in CostExplorer(ledger, lambda arn: tags.get(arn, {})).operations().items():
        registry.register("ce", op, handler)
    for op, handler in cloudwatch.operations().items():
        registry.register("monitoring", op, handler)
    with serve_registry(registry) as base:
        yield base


NOW = datetime(2024, 3, 11, 12, 0, tzinfo=UTC)


def lines(url: str, state_dir: Path, *argv: str) -> list[list[str]]:
    out = io.StringIO()
    assert run_costs(parse("--url", url, "--state-dir", str(state_dir), *argv), out, NOW) == 0
    return [line.split() for line in out.getvalue().splitlines()]


def test_by_endpoint_and_variant_per_day_with_cost_per_inference(url: str,
                                                                 state_dir: Path) -> None:
    assert lines(url, state_dir, "--days", "2") == [
        ["PERIOD", "ENDPOINT", "VARIANT", "INSTANCE_HOURS", "COST_USD", "COST_PER_INFERENCE"],
        # A day of ml.m5.large is $2.76; over 2,300 requests that is $0.0012 each.
        ["2024-03-10", "shop", "a", "24.000", "2.760000", "0.00120000"],
        ["2024-03-10", "shop", "b", "6.000", "1.224000", "-"],
        ["2024-03-11", "lab", "a", "12.000", "1.380000", "-"],
        ["TOTAL", "42.000", "5.364000"],
    ]


def test_by_tag_for_one_endpoint_hourly(url: str, state_dir: Path) -> None:
    table = lines(url, state_dir, "--by", "tag:team", "--granularity", "HOURLY",
                  "--start", "2024-03-11T10:00:00Z", "--endpoint", "lab")
    assert table == [
        ["PERIOD", "TAG:TEAM", "INSTANCE_HOURS", "COST_USD"],
        ["2024-03-11T10:00:00Z", "ml", "1.000", "0.115000"],
        ["2024-03-11T11:00:00Z", "ml", "1.000", "0.115000"],
        ["TOTAL", "2.000", "0.230000"],
    ]


def test_untagged_rows_are_marked(url: str, state_dir: Path) -> None:
    table = lines(url, state_dir, "--by", "tag:team", "--days", "2")
    assert ["2024-03-10", "(untagged)", "30.000", "3.984000"] in table


def test_three_groupings_are_refused_before_any_call(state_dir: Path) -> None:
    args = parse("--url", "http://127.0.0.1:9", "--state-dir", str(state_dir),
                 "--by", "endpoint", "--by", "variant", "--by", "tag:x")
    with pytest.raises(ValueError, match="at most twice"):
        run_costs(args, io.StringIO(), NOW)
