"""DescribeEndpoint and ListEndpoints: the endpoint's row as AWS shows it."""

from __future__ import annotations

from typing import Any

from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.control.kinds import VariantKinds
from tideserve.control.plane import ts
from tideserve.control.store import EndpointRow


def describe_endpoint(row: EndpointRow, kinds: VariantKinds,
                      async_endpoints: AsyncEndpoints | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "EndpointName": row.name,
        "EndpointArn": row.arn,
        "EndpointConfigName": row.config_name,
        "ProductionVariants": [
            variant_summary(row, v, kinds) for v in row.variants
        ],
        "EndpointStatus": row.status,
        "CreationTime": ts(row.creation_time),
        "LastModifiedTime": ts(row.last_modified_time),
    }
    if row.failure_reason:
        out["FailureReason"] = row.failure_reason
    if async_endpoints is not None and async_endpoints.describe(row.name):
        out["AsyncInferenceConfig"] = async_endpoints.describe(row.name)
    if row.pending_config_name:
        out["PendingDeploymentSummary"] = pending_summary(row, kinds)
    return out


def pending_summary(row: EndpointRow, kinds: VariantKinds) -> dict[str, Any]:
    """The fleet a blue/green UpdateEndpoint is bringing up, as AWS shows it: apart from
    ProductionVariants, which keep describing the fleet that serves until the switch."""
    variants = []
    for v in row.pending_variants:
        summary = variant_summary(row, v, kinds)
        if v.get("InstanceType"):
            summary["InstanceType"] = v["InstanceType"]
        variants.append(summary)
    return {
        "EndpointConfigName": row.pending_config_name,
        "ProductionVariants": variants,
        "StartTime": ts(row.last_modified_time),
    }


def variant_summary(row: EndpointRow, v: dict[str, Any], kinds: VariantKinds) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VariantName": v["VariantName"],
        "DeployedImages": [
            {"SpecifiedImage": image, "ResolvedImage": image,
             "ResolutionTime": ts(row.creation_time)}
            for image in v.get("Images", [])
        ],
        "CurrentWeight": float(v["CurrentWeight"]),
        "DesiredWeight": float(v["DesiredWeight"]),
        "CurrentInstanceCount": int(v["CurrentInstanceCount"]),
        "DesiredInstanceCount": int(v["DesiredInstanceCount"]),
    }
    if v.get("RestartStatus"):  # crash-looping instances (control/restarts.py)
        status = v["RestartStatus"]
        out["VariantStatus"] = [{"Status": status["Status"],
                                 "StatusMessage": status["StatusMessage"],
                                 "StartTime": ts(status["StartTime"])}]
    elif row.status in ("Creating", "Updating") and v.get("StatusStartTime"):
        out["VariantStatus"] = [{
            "Status": "Creating" if row.status == "Creating" else "Updating",
            "StartTime": ts(v["StatusStartTime"]),
        }]
    kind = kinds.owner(v)
    return kind.describe_variant(out, v) if kind is not None else out


def endpoint_summary(r: EndpointRow) -> dict[str, Any]:
    """ListEndpoints' EndpointSummary."""
    return {"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": ts(r.creation_time),
            "LastModifiedTime": ts(r.last_modified_time), "EndpointStatus": r.status}
