"""The router's side of a multi-container instance: which TargetContainerHostname an endpoint
takes (AWS's three validation errors), and the front's report surviving the header hop."""

from __future__ import annotations

import pytest

from tideserve.errors import ValidationError
from tideserve.serving.containers.report import (
    ContainerLayout,
    ContainerReport,
    check_single_target,
)

DIRECT = ContainerLayout("Direct", ("pre", "xgb"))
SERIAL = ContainerLayout("Serial", ("pre", "xgb"))


@pytest.mark.parametrize(("layout", "target", "message"), [
    (DIRECT, None, "Endpoint ep is configured for direct invocation; TargetContainerHostname "
                   "is required."),
    (DIRECT, "nope", "Container hostname nope does not exist in endpoint ep."),
    (SERIAL, "xgb", "Endpoint ep is not configured for direct invocation."),
], ids=["direct without a target", "direct with an unknown target", "serial with a target"])
def test_a_target_that_does_not_fit_the_endpoint_is_refused(layout, target, message) -> None:
    with pytest.raises(ValidationError) as refused:
        layout.check_target(target, "ep")
    assert refused.value.message == message


def test_a_target_that_fits_passes_and_a_single_container_takes_none() -> None:
    DIRECT.check_target("xgb", "ep")
    SERIAL.check_target(None, "ep")
    check_single_target(None, "ep")
    with pytest.raises(ValidationError, match="not configured for direct invocation"):
        check_single_target("xgb", "ep")


def test_the_report_round_trips_and_sums_a_pipelines_model_latency() -> None:
    report = ContainerReport((("pre", 120.5), ("xgb", 300.0)), "xgb", 500,
                             'Received server error (500) from xgb with message "boom".')
    again = ContainerReport.decode(report.encode())
    assert again == report
    assert again is not None and again.model_us == 420.5
    assert "\n" not in report.encode()  # it travels as one header line
    assert ContainerReport.decode(None) is None
    assert ContainerReport.decode("not json") is None
