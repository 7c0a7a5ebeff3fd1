"""SageMaker ML Lineage as far as hosting creates it: the context of each endpoint.

SageMaker creates one lineage context per endpoint (ContextType `Endpoint`, its Source the
endpoint's ARN), which the SageMaker Python SDK's `Predictor.endpoint_context()` finds with
ListContexts(SourceUri=<endpoint ARN>) and loads with DescribeContext. tideserve keeps no
lineage store: the contexts are derived from the endpoints that exist, so one appears with
its endpoint and goes with it. The name is the endpoint's, its creation time in epoch seconds
and `-aws-endpoint` (`my-endpoint-1733270400-aws-endpoint`), unique because endpoint names
are, and stable across restarts because creation times are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tideserve.control.listing import epoch, page
from tideserve.control.names import Arns
from tideserve.control.plane import ts
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.errors import NotFoundError

ENDPOINT_CONTEXT_TYPE = "Endpoint"
_SUFFIX = "-aws-endpoint"


def context_name(endpoint: EndpointRow) -> str:
    return f"{endpoint.name}-{int(endpoint.creation_time)}{_SUFFIX}"


class EndpointContexts:
    def __init__(self, store: ControlStore, arns: Arns) -> None:
        self.store = store
        self.arns = arns

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"ListContexts": self.list_contexts, "DescribeContext": self.describe_context}

    def list_contexts(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [r for r in self.store.list_endpoints() if self._matches(r, p)]
        if p.get("SortBy") == "Name":
            rows.sort(key=lambda r: context_name(r).lower())
        else:
            rows.sort(key=lambda r: r.creation_time)
        if (p.get("SortOrder") or "Descending") == "Descending":
            rows.reverse()
        chunk, token = page(rows, p)
        out: dict[str, Any] = {"ContextSummaries": [self._summary(r) for r in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def describe_context(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ContextName"]
        for row in self.store.list_endpoints():
            if context_name(row).lower() == name.lower():
                return {**self._summary(row), "CreatedBy": {}, "LastModifiedBy": {}}
        raise NotFoundError(
            f"Context '{self.arns.sagemaker('context', name)}' does not exist.",
            code="ResourceNotFound",
        )

    def _matches(self, row: EndpointRow, p: dict[str, Any]) -> bool:
        if p.get("SourceUri") and p["SourceUri"] != row.arn:
            return False
        if p.get("ContextType") and p["ContextType"] != ENDPOINT_CONTEXT_TYPE:
            return False
        after, before = epoch(p.get("CreatedAfter")), epoch(p.get("CreatedBefore"))
        if after is not None and row.creation_time <= after:
            return False
        return before is None or row.creation_time < before

    def _summary(self, row: EndpointRow) -> dict[str, Any]:
        name = context_name(row)
        return {
            "ContextArn": self.arns.sagemaker("context", name),
            "ContextName": name,
            "Source": {"SourceUri": row.arn, "SourceType": "ARN"},
            "ContextType": ENDPOINT_CONTEXT_TYPE,
            "CreationTime": ts(row.creation_time),
            "LastModifiedTime": ts(row.last_modified_time),
        }
