"""Inference Recommender through boto3 on a real server: a job over three instance types for
a RandomForest model really load-tests an instance of each, ranks them by cost per inference,
and `tideserve recommend apply` deploys the cheapest that meets the p95 threshold with its
scaling policy. Traffic is tiny and the period compressed (2 s: the 90 s phase runs in 3 s)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support import csv_rows, pack_skops
from tideserve.cli import main as cli_main

ROLE = "arn:aws:iam::123456789012:role/ir"
TYPES = ("ml.c5.large", "ml.m5.large", "ml.r5.large")


def payload_tar(rows: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, row in enumerate(rows):
            data = row.encode()
            info = tarfile.TarInfo(f"payload/{i}.csv")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def forest(server, tmp_path_factory):
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1).fit(X, y)
    archive = pack_skops(model, tmp_path_factory.mktemp("forest"))
    sm, s3 = server.client("sagemaker"), server.client("s3")
    sm.create_model(ModelName="ir-forest", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "tideserve/sklearn",
                                      "ModelDataUrl": str(archive),
                                      "Environment": {"TIDESERVE_SKOPS_TRUSTED":
                                                      "sklearn.tree._tree.Tree"}})
    s3.create_bucket(Bucket="ir-payloads")
    s3.put_object(Bucket="ir-payloads", Key="forest.tar.gz",
                  Body=payload_tar([csv_rows(X[i:i + 1]) for i in range(8)]))
    s3.put_object(Bucket="ir-payloads", Key="empty.tar.gz", Body=payload_tar([]))
    return "ir-forest"


def job_request(name: str, types=TYPES, **overrides):
    request = {
        "JobName": name, "JobType": "Advanced", "RoleArn": ROLE,
        "InputConfig": {
            "ModelName": "ir-forest",
            "ContainerConfig": {"Domain": "MACHINE_LEARNING", "Framework": "SAGEMAKER-SCIKIT-LEARN",
                                "PayloadConfig": {"SamplePayloadUrl": "s3://ir-payloads/forest.tar.gz",
                                                  "SupportedContentTypes": ["text/csv"]}},
            "EndpointConfigurations": [{"InstanceType": t} for t in types],
            "TrafficPattern": {"TrafficType": "PHASES", "Phases": [
                {"InitialNumberOfUsers": 1, "SpawnRate": 3, "DurationInSeconds": 90}]},
        },
        "StoppingConditions": {"ModelLatencyThresholds": [
            {"Percentile": "P95", "ValueInMilliseconds": 500}]},
    }
    request["InputConfig"].update(overrides)
    return request


def wait_terminal(sm, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_inference_recommendations_job(JobName=name)
        if job["Status"] in ("COMPLETED", "FAILED", "STOPPED"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {name} still {job['Status']}")


def test_three_types_ranked_and_the_cheapest_applied(server, forest, capsys):
    sm = server.client("sagemaker")
    arn = sm.create_inference_recommendations_job(**job_request("ir-three"))["JobArn"]
    assert arn.endswith(":inference-recommendations-job/ir-three")
    job = wait_terminal(sm, "ir-three")
    assert job["Status"] == "COMPLETED", job.get("FailureReason")
    recs = job["InferenceRecommendations"]
    assert {r["EndpointConfiguration"]["InstanceType"] for r in recs} <= set(TYPES)
    costs = [r["Metrics"]["CostPerInference"] for r in recs]
    assert costs == sorted(costs)
    for r in recs:  # measured, and consistent with the catalog price
        m = r["Metrics"]
        assert m["MaxInvocations"] > 0 and 0 < m["ModelLatency"] <= 500
        assert m["CpuUtilization"] > 0 and m["MemoryUtilization"] > 0
        assert m["CostPerInference"] == pytest.approx(
            m["CostPerHour"] / (60 * m["MaxInvocations"]))
    steps = sm.list_inference_recommendations_job_steps(JobName="ir-three")["Steps"]
    assert len(steps) == 3 and all(s["StepType"] == "BENCHMARK" for s in steps)

    listed = sm.list_inference_recommendations_jobs(NameContains="ir-thr", StatusEquals="COMPLETED")
    assert [j["JobName"] for j in listed["InferenceRecommendationsJobs"]] == ["ir-three"]
    assert listed["InferenceRecommendationsJobs"][0]["ModelName"] == "ir-forest"

    best = recs[0]
    by_endpoint = sm.get_scaling_configuration_recommendation(
        InferenceRecommendationsJobName="ir-three",
        EndpointName=best["EndpointConfiguration"]["EndpointName"],
        ScalingPolicyObjective={"MinInvocationsPerMinute": 1, "MaxInvocationsPerMinute": 10**6})
    assert by_endpoint["DynamicScalingConfiguration"]["MaxCapacity"] >= 1
    scaling = sm.get_scaling_configuration_recommendation(
        InferenceRecommendationsJobName="ir-three", RecommendationId=best["RecommendationId"])
    target = scaling["DynamicScalingConfiguration"]["ScalingPolicies"][0]["TargetTracking"]
    assert 0 < target["TargetValue"] <= best["Metrics"]["MaxInvocations"]

    args = ["--url", server.url, "--state-dir", str(server.state_dir)]
    trace = Path(__file__).parents[2] / "examples/traces/azure_llm_code_2023_1s.csv"
    assert cli_main(["recommend", "show", "ir-three", "--trace", str(trace), *args]) == 0
    table = capsys.readouterr().out
    assert best["EndpointConfiguration"]["InstanceType"] in table and "TargetValue" in table
    assert "replay $" in table and "%" in table
    assert cli_main(["recommend", "apply", "ir-three", "--endpoint", "ir-applied", *args]) == 0
    endpoint = sm.describe_endpoint(EndpointName="ir-applied")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == best["EndpointConfiguration"]["InstanceType"]
    aas = server.client("application-autoscaling")
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    mine = [p for p in policies if p["ResourceId"] == "endpoint/ir-applied/variant/AllTraffic"]
    assert mine[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == \
        target["TargetValue"]


@pytest.mark.parametrize("case, overrides, message", [
    ("unknown type", {"EndpointConfigurations": [{"InstanceType": "ml.c6i.large"}]},
     "not in tideserve's price catalog"),
    ("burstable type", {"EndpointConfigurations": [{"InstanceType": "ml.t2.medium"}]},
     "Burstable instance type ml.t2.medium is not allowed."),
    ("empty payload", {"ContainerConfig": {
        "Domain": "MACHINE_LEARNING", "Framework": "SAGEMAKER-SCIKIT-LEARN",
        "PayloadConfig": {"SamplePayloadUrl": "s3://ir-payloads/empty.tar.gz"}}},
     "no sample payload"),
    ("broken phases", {"TrafficPattern": {"TrafficType": "PHASES", "Phases": [
        {"InitialNumberOfUsers": 1, "SpawnRate": 0, "DurationInSeconds": 120},
        {"InitialNumberOfUsers": 9, "SpawnRate": 1, "DurationInSeconds": 120}]}},
     "Users at the end of prev phase is 1 while initial users of current phase is 9"),
])
def test_bad_input_gets_aws_errors(server, forest, case, overrides, message):
    sm = server.client("sagemaker")
    with pytest.raises(ClientError) as err:
        sm.create_inference_recommendations_job(**job_request(f"ir-bad-{len(case)}",
                                                              **overrides))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message in err.value.response["Error"]["Message"]


def test_a_stopped_job_stops(server, forest):
    sm = server.client("sagemaker")
    sm.create_inference_recommendations_job(**job_request("ir-stop", types=TYPES[:1]))
    sm.stop_inference_recommendations_job(JobName="ir-stop")
    job = wait_terminal(sm, "ir-stop")
    assert job["Status"] == "STOPPED" and "CompletionTime" in job
    with pytest.raises(ClientError) as err:
        sm.stop_inference_recommendations_job(JobName="ir-stop")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_bad_shapes_and_unknown_jobs(server, forest):
    sm = server.client("sagemaker", parameter_validation=False)
    bad = job_request("ir-shape")
    bad["JobType"] = "Quick"
    with pytest.raises(ClientError) as err:
        sm.create_inference_recommendations_job(**bad)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        sm.describe_inference_recommendations_job(JobName="ir-nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
