"""What installs a tuned policy set: the boto3 calls (Application Auto Scaling, then
CloudWatch for a step set's alarms), and the scenario YAML entry to rehearse it again.
tideserve's own policies (`tideserve_policy`) have no boto3 call: they are a scenario-YAML
extension (sim.extension says why), so only the RegisterScalableTarget is printed for them."""

from __future__ import annotations

import pprint
from typing import Any

import yaml

from tideserve.sim.scenario import Scenario


def boto3_calls(raw_set: dict[str, Any], scenario: Scenario) -> str:
    ep = scenario.endpoint
    target = {"ServiceNamespace": "sagemaker", "ResourceId": ep.resource_id,
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    lines = ["import boto3", "", 'aas = boto3.client("application-autoscaling")']
    alarms = raw_set.get("put_metric_alarm") or []
    if alarms:
        lines.append('cloudwatch = boto3.client("cloudwatch")')
    lines.append("arns = {}")
    lines.append(_call("aas.register_scalable_target",
                       {**target, **raw_set["register_scalable_target"]}))
    for policy in raw_set.get("put_scaling_policy") or []:
        call = _call("out = aas.put_scaling_policy", {**target, **policy})
        lines += [call, f'arns["{policy["PolicyName"]}"] = out["PolicyARN"]']
    names = {"${EndpointName}": ep.name, "${VariantName}": ep.variant}
    for alarm in alarms:
        text = _call("cloudwatch.put_metric_alarm", alarm)
        for k, v in names.items():
            text = text.replace(k, v)
        for policy in raw_set.get("put_scaling_policy") or []:
            name = policy["PolicyName"]
            text = text.replace(f"'${{policy:{name}}}'", f'arns["{name}"]')
        lines.append(text)
    if raw_set.get("tideserve_policy"):
        lines.append("# tideserve_policy is a tideserve extension with no AWS call: rehearse it "
                     "with the scenario YAML below")
    return "\n".join(lines) + "\n"


def _call(fn: str, params: dict[str, Any]) -> str:
    body = pprint.pformat(params, width=88, sort_dicts=False)
    return f"{fn}(**{body})"


def yaml_entry(raw_set: dict[str, Any]) -> str:
    text: str = yaml.safe_dump({"policy_sets": [raw_set]}, sort_keys=False, width=96)
    return text
