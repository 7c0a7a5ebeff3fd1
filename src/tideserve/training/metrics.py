"""FinalMetricDataList: each MetricDefinition's regex run over the script's log, its first
capture group as a float, the last match kept (spec §4.9: "the last value of each").

The regexes are AWS's (Java syntax); the common ones (`loss: ([0-9\\.]+)`) read the same in
Python's `re`. One that Python cannot compile is skipped rather than failing the job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def final_metrics(log_text: str, definitions: Sequence[Mapping[str, str]],
                  at: float) -> list[dict[str, Any]]:
    """[{MetricName, Value, Timestamp (epoch seconds)}] for the definitions that matched."""
    out: list[dict[str, Any]] = []
    for definition in definitions:
        try:
            pattern = re.compile(definition["Regex"])
        except re.error:
            continue
        last = None
        for match in pattern.finditer(log_text):
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                last = float(text)
            except (TypeError, ValueError):
                continue
        if last is not None:
            out.append({"MetricName": definition["Name"], "Value": last, "Timestamp": at})
    return out
