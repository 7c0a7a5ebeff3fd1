"""Trace headers as clients send them (spec §6.1, §6.3 and invariant 20)."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanContext, TraceFlags, get_current_span

from tideserve.tracing.propagation import (
    extract,
    header_lines,
    parse_traceparent,
    parse_xray,
    traceparent,
    xray_header,
)

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def test_an_xray_header_names_the_w3c_trace_and_parent():
    found = parse_xray(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    assert found is not None
    assert f"{found.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{found.span_id:016x}" == "53995c3f42cd8ad8"
    assert found.trace_flags.sampled and found.is_remote


@pytest.mark.parametrize("header", [
    pytest.param(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=?", id="Sampled=? is invalid"),
    pytest.param(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled", id="a part without ="),
    pytest.param("Root=1-5759e988-bd86;Parent=53995c3f42cd8ad8;Sampled=1", id="short root"),
    pytest.param(f"Root={ROOT};Parent=53995c3f;Sampled=1", id="short parent"),
    pytest.param(f"Root={ROOT};Sampled=1", id="no parent"),
    pytest.param(f"root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1", id="keys are case-sensitive"),
])
def test_a_malformed_xray_header_is_ignored_whole(header):
    assert parse_xray(header) is None


def test_unknown_xray_keys_are_ignored_and_no_sampled_means_not_sampled():
    found = parse_xray(f"Self=1-abc;Root={ROOT};Parent=53995c3f42cd8ad8;Lineage=a:1")
    assert found is not None and not found.trace_flags.sampled


@pytest.mark.parametrize("value", [
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero span id
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    "garbage",
])
def test_an_invalid_traceparent_is_ignored(value):
    assert parse_traceparent(value) is None


def test_traceparent_wins_over_xray_and_a_bad_one_falls_back_to_xray():
    both = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "x-amzn-trace-id": f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"}
    context = extract(both)
    assert context is not None
    span_context = get_current_span(context).get_span_context()
    assert span_context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    context = extract({**both, "traceparent": "garbage"})
    assert context is not None
    span_context = get_current_span(context).get_span_context()
    assert span_context.trace_id == 0x5759E988BD862E3FE1BE46A994272793
    assert extract({}) is None


def test_the_hop_carries_both_forms_of_the_same_context():
    context = SpanContext(0x5759e988bd862e3fe1be46a994272793, 0x53995c3f42cd8ad8, False,
                          TraceFlags(TraceFlags.SAMPLED))
    assert traceparent(context) == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert xray_header(context) == f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"
    assert parse_xray(xray_header(context)) == parse_traceparent(traceparent(context))
    assert header_lines(context).count(b"\r\n") == 2
