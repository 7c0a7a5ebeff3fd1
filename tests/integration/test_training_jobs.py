"""Training jobs through boto3 alone, against a real `tideserve up` (period 2 s, so AWS's
two-minute spot notice is 4 s): a user's train.py trains scikit-learn on a CSV channel,
checkpoints, is interrupted twice on spot, resumes from its checkpoints, completes with
billable time below training time, and its model.tar.gz deploys and answers. Failures (a
script that raises, a missing channel prefix, bad shapes) end as AWS words them."""

from __future__ import annotations

import io
import json
import re
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import wait_in_service
from tests.integration.test_sagemaker_sdk import sdk_session  # noqa: F401 - a fixture
from tests.support import RunningServer, cost_by_purchase_type, start_server, stop_server
from tideserve.cli import main
from tideserve.training.rows import training_job_rows

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BUCKET = "training-data"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

# The user's script, as written for SageMaker: SM_* variables, `--key value` arguments,
# checkpoints in the checkpoint dir, the model in SM_MODEL_DIR. Its history of starting
# epochs goes into the model archive, so the test can see where each attempt resumed.
TRAIN = '''
import argparse, json, os, pickle, time
import numpy as np
import skops.io
from sklearn.linear_model import SGDClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--epoch-seconds", type=float, default=0.2)
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
args = parser.parse_args()
assert json.loads(os.environ["SM_CHANNELS"]) == ["train"]
assert json.loads(os.environ["SM_HPS"])["epochs"] == args.epochs

checkpoints = os.environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints")
state = os.path.join(checkpoints, "state.pkl")
history_file = os.path.join(checkpoints, "history.json")
data = np.loadtxt(os.path.join(args.train, "iris.csv"), delimiter=",")
y, X = data[:, 0], data[:, 1:]
start, model, history = 0, SGDClassifier(random_state=0), []
if os.path.exists(state):
    with open(state, "rb") as f:
        start, model = pickle.load(f)
    with open(history_file) as f:
        history = json.load(f)
history.append(start)
with open(history_file, "w") as f:
    json.dump(history, f)
print(f"starting at epoch {start}", flush=True)
for epoch in range(start, args.epochs):
    model.partial_fit(X, y, classes=np.array([0.0, 1.0, 2.0]))
    time.sleep(args.epoch_seconds)
    with open(state + ".tmp", "wb") as f:
        pickle.dump((epoch + 1, model), f)
    os.replace(state + ".tmp", state)
    progress = os.path.join(checkpoints, "progress.json")
    with open(progress + ".tmp", "w") as f:
        json.dump({"epoch": epoch + 1}, f)
    os.replace(progress + ".tmp", progress)
    print(f"epoch {epoch + 1} done; accuracy: {model.score(X, y):.4f}", flush=True)
skops.io.dump(model, os.path.join(args.model_dir, "model.skops"))
with open(os.path.join(args.model_dir, "history.json"), "w") as f:
    json.dump(history, f)
'''

# The same contract without scikit-learn, for the tests about the job rather than the model:
# an interpreter that imports nothing heavy starts in a blink even on a loaded machine.
COUNTER = '''
import argparse, json, os, time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--epoch-seconds", type=float, default=0.2)
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
args = parser.parse_args()
checkpoints = os.environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints")
os.makedirs(checkpoints, exist_ok=True)
progress = os.path.join(checkpoints, "progress.json")
start = json.load(open(progress))["epoch"] if os.path.exists(progress) else 0
history = json.load(open(progress))["history"] if os.path.exists(progress) else []
history.append(start)
for epoch in range(start, args.epochs):
    time.sleep(args.epoch_seconds)
    with open(progress + ".tmp", "w") as f:
        json.dump({"epoch": epoch + 1, "history": history}, f)
    os.replace(progress + ".tmp", progress)
with open(os.path.join(args.model_dir, "history.json"), "w") as f:
    json.dump(history, f)
'''

RAISES = '''
import os
print("loading", os.environ["SM_CHANNEL_TRAIN"])
raise ValueError("the label column has no values")
'''


def _sourcedir(s3, name: str, script: str) -> str:
    """Upload sourcedir.tar.gz as the SageMaker Python SDK does; its s3:// URI."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(script.encode())
        tar.addfile(info, io.BytesIO(script.encode()))
    key = f"{name}/source/sourcedir.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


@pytest.fixture(scope="module")
def iris_channel(server: RunningServer) -> str:
    s3 = server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="iris/train/iris.csv", Body=_iris_csv())
    return f"s3://{BUCKET}/iris/train/"


def _request(s3, name: str, script: str, channel: str, **extra) -> dict:
    hyperparameters = {  # JSON-encoded, as the SDK's framework estimators send them
        "epochs": "5", "epoch-seconds": "0.2",
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(_sourcedir(s3, name, script)),
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": json.dumps(name), "sagemaker_region": json.dumps("us-east-1"),
    }
    hyperparameters.update(extra.pop("HyperParameters", {}))
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": channel,
            "S3DataDistributionType": "FullyReplicated"}}, "ContentType": "text/csv"}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        **extra,
    }


def _wait_for(sm, name: str, predicate, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"{name}: condition not met; last {job['SecondaryStatus']}: {job}")


def _checkpointed_past(s3, key: str, epoch: int):
    """The job's progress.json in S3 (a checkpoint) records more than `epoch` epochs done."""
    def check(job: dict) -> bool:
        return job["SecondaryStatus"] == "Training" and _epoch(s3, key) > epoch
    return check


def _epoch(s3, key: str) -> int:
    try:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError:
        return -1
    return int(json.loads(body)["epoch"])


def _interrupt(server: RunningServer, name: str) -> None:
    from tideserve.client import tideserve_client

    answer = tideserve_client(server.url, server.state_dir).interrupt_spot_instance(
        InstanceOrJob=name)
    assert answer["Holder"] == name and answer["NoticeSeconds"] == pytest.approx(4.0)


def test_spot_job_interrupted_twice_resumes_and_its_model_serves(
        server: RunningServer, iris_channel: str, tmp_path: Path):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    name = "iris-spot"
    request = _request(s3, name, TRAIN, iris_channel,
                       HyperParameters={"epochs": "120", "epoch-seconds": "0.1"},
                       EnableManagedSpotTraining=True,
                       StoppingCondition={"MaxRuntimeInSeconds": 3600,
                                          "MaxWaitTimeInSeconds": 7200},
                       CheckpointConfig={"S3Uri": f"s3://{BUCKET}/checkpoints/{name}"},
                       Tags=[{"Key": "team", "Value": "forecasting"}])
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:accuracy", "Regex": r"accuracy: ([0-9\.]+)"}]
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    checkpoint = f"checkpoints/{name}/progress.json"

    # First attempt: once a checkpoint is in S3, reclaim the instance; the notice is 4 s.
    _wait_for(sm, name, _checkpointed_past(s3, checkpoint, 0))
    _interrupt(server, name)
    _wait_for(sm, name, lambda j: any(t["Status"] == "Interrupted"
                                      for t in j["SecondaryStatusTransitions"]))
    # Second attempt, resumed: wait for it to checkpoint further, then reclaim again.
    _wait_for(sm, name, lambda j: sum(t["Status"] == "Training"
                                      for t in j["SecondaryStatusTransitions"]) == 2)
    first_resume = _epoch(s3, checkpoint)
    _wait_for(sm, name, _checkpointed_past(s3, checkpoint, first_resume))
    assert main(["spot", "interrupt", name, "--url", server.url,
                 "--state-dir", str(server.state_dir)]) == 0  # the CLI, this time

    started = time.monotonic()
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    print(f"completed {time.monotonic() - started:.1f} s after the second interruption")
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Interrupted",
                        "Starting", "Downloading", "Training", "Interrupted",
                        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert 0 < job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"]
    (metric,) = job["FinalMetricDataList"]
    assert metric["MetricName"] == "train:accuracy" and 0.3 < metric["Value"] <= 1.0
    savings = (1 - job["BillableTimeInSeconds"] / job["TrainingTimeInSeconds"]) * 100
    assert 60 < savings < 80  # the catalog's 70 % spot discount, give or take rounding
    row = next(r for r in training_job_rows(sm) if r[0] == name)  # `tideserve jobs`
    assert row[1:3] == (f"Training (spot, {savings:.1f}% saved)", "Completed")  # as the console
    assert row[4] == job["TrainingTimeInSeconds"]

    artifacts = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifacts == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    archive = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive["Body"].read())) as tar:
        history = json.load(tar.extractfile("history.json"))  # type: ignore[arg-type]
    assert len(history) == 3 and history[0] == 0 and 0 < history[1] < history[2] < 120

    # The archive deploys as it is, on the same framework image, and answers.
    served = f"{name}-model"
    sm.create_model(ModelName=served, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": artifacts})
    sm.create_endpoint_config(EndpointConfigName=served, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": served, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=served, EndpointConfigName=served)
    started = time.monotonic()
    wait_in_service(sm, served)
    print(f"endpoint in service after {time.monotonic() - started:.1f} s")
    answer = server.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=served, ContentType="text/csv", Body=b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3")
    predictions = np.asarray(json.loads(answer["Body"].read()))
    assert predictions.shape == (2,) and set(predictions) <= {0.0, 1.0, 2.0}

    # Billed at the spot rate in the cost ledger, under the job's tags (Cost Explorer).
    costs = cost_by_purchase_type(server, "team", "forecasting")  # the job's own tag
    assert set(costs) == {"Spot Instances"} and costs["Spot Instances"] > 0


def test_script_that_raises_fails_with_the_error(server: RunningServer, iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    sm.create_training_job(**_request(s3, "raises", RAISES, iris_channel))
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    with pytest.raises(Exception, match="Failed"):
        waiter.wait(TrainingJobName="raises", WaiterConfig={"Delay": 0.3, "MaxAttempts": 200})
    job = sm.describe_training_job(TrainingJobName="raises")
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:")
    assert 'ErrorMessage "ValueError: the label column has no values"' in job["FailureReason"]
    log = server.state_dir / "training" / "raises" / "algo-1.log"
    assert "Traceback" in log.read_text()
    # The same lines in CloudWatch Logs, in the job's algo-1 stream, as the SDK looks for it.
    logs = server.client("logs")
    deadline = time.monotonic() + 15
    while True:
        found = logs.filter_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="raises/",
            filterPattern='"the label column has no values"')["events"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert found and all(re.fullmatch(r"raises/algo-1-\d+", e["logStreamName"]) for e in found)


def test_missing_channel_prefix_fails_clearly(server: RunningServer, iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    missing = f"s3://{BUCKET}/nothing/here/"
    sm.create_training_job(**_request(s3, "no-data", COUNTER, missing))
    job = _wait_for(sm, "no-data", lambda j: j["TrainingJobStatus"] == "Failed")
    assert job["FailureReason"].startswith(
        f'ClientError: No S3 objects found under S3 URL "{missing}"')
    assert "Training" not in [t["Status"] for t in job["SecondaryStatusTransitions"]]


def test_bad_requests_are_validation_exceptions(server: RunningServer, iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    good = _request(s3, "shapes", TRAIN, iris_channel)
    cases = {
        "bad name": {**good, "TrainingJobName": "no_underscores"},
        "wait without spot": {**good, "StoppingCondition": {"MaxRuntimeInSeconds": 60,
                                                            "MaxWaitTimeInSeconds": 120}},
        "wait under runtime": {**good, "EnableManagedSpotTraining": True, "StoppingCondition": {
            "MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 60}},
        "unknown image": {**good, "AlgorithmSpecification": {
            "TrainingImage": "example.com/mine:1", "TrainingInputMode": "File"}},
        "bad output bucket": {**good, "OutputDataConfig": {"S3OutputPath": "s3://No_Such/x"}},
        "bad input mode": {**good, "AlgorithmSpecification": {
            "TrainingImage": IMAGE, "TrainingInputMode": "Tape"}},
    }
    for case, request in cases.items():
        with pytest.raises(ClientError) as info:
            sm.create_training_job(**request)
        assert info.value.response["Error"]["Code"] == "ValidationException", case
    with pytest.raises(ClientError, match="Requested resource not found"):
        sm.describe_training_job(TrainingJobName="never-created")


def test_stop_list_and_duplicate(server: RunningServer, iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    request = _request(s3, "to-stop", COUNTER, iris_channel,
                       HyperParameters={"epochs": "100", "epoch-seconds": "0.5"})
    sm.create_training_job(**request)
    with pytest.raises(ClientError) as info:
        sm.create_training_job(**request)
    assert info.value.response["Error"]["Code"] == "ResourceInUse"
    _wait_for(sm, "to-stop", lambda j: j["SecondaryStatus"] == "Training")
    sm.stop_training_job(TrainingJobName="to-stop")
    assert sm.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] in (
        "Stopping", "Stopped")
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName="to-stop", WaiterConfig={"Delay": 0.3, "MaxAttempts": 200})
    job = sm.describe_training_job(TrainingJobName="to-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == [
        "Stopping", "Stopped"]
    with pytest.raises(ClientError, match="in status Stopped"):
        sm.stop_training_job(TrainingJobName="to-stop")

    names = [s["TrainingJobName"] for page in sm.get_paginator("list_training_jobs").paginate(
        StatusEquals="Stopped", PaginationConfig={"PageSize": 1}) for s in page[
        "TrainingJobSummaries"]]
    assert "to-stop" in names and "iris-spot" not in names
    refused = main(["spot", "interrupt", "to-stop", "--url", server.url,
                    "--state-dir", str(server.state_dir)])
    assert refused == 1  # an on-demand job that ended holds no spot instance
    rows = {row[0]: row for row in training_job_rows(sm)}  # what `tideserve jobs` lists
    assert rows["to-stop"][1:3] == ("Training", "Stopped")


def test_no_spot_capacity_until_max_wait_stops_the_job(server: RunningServer,
                                                        iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    name = "waits-for-spot"
    request = _request(s3, name, COUNTER, iris_channel,
                       HyperParameters={"epochs": "200", "epoch-seconds": "0.1"},
                       # a type no other test runs on spot: its capacity stays withheld a while
                       ResourceConfig={"InstanceType": "ml.r5.large", "InstanceCount": 1},
                       EnableManagedSpotTraining=True,  # 300 s scaled by 1/30: 10 s
                       StoppingCondition={"MaxRuntimeInSeconds": 300,
                                          "MaxWaitTimeInSeconds": 300})
    sm.create_training_job(**request)
    _wait_for(sm, name, lambda j: j["SecondaryStatus"] == "Training")
    from tideserve.client import tideserve_client

    tideserve_client(server.url, server.state_dir).interrupt_spot_instance(
        InstanceOrJob=name, CapacityUnavailableSeconds=3600)
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    job = sm.describe_training_job(TrainingJobName=name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == (
        "Stopped", "MaxWaitTimeExceeded")
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions][-4:] == [
        "Interrupted", "Starting", "Stopping", "MaxWaitTimeExceeded"]
    assert transitions[-3]["StatusMessage"] == (
        "Insufficient capacity error from EC2 while launching instances, retrying!")


def test_max_runtime_stops_the_job(server: RunningServer, iris_channel: str):
    sm, s3 = server.client("sagemaker"), server.client("s3")
    request = _request(s3, "too-long", COUNTER, iris_channel,
                       HyperParameters={"epochs": "200", "epoch-seconds": "0.1"},
                       StoppingCondition={"MaxRuntimeInSeconds": 60})  # 2 s at period 2
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName="too-long", WaiterConfig={"Delay": 0.3, "MaxAttempts": 100})
    job = sm.describe_training_job(TrainingJobName="too-long")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == (
        "Stopped", "MaxRuntimeExceeded")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Stopping", "MaxRuntimeExceeded"]
    assert job["TrainingTimeInSeconds"] == job["BillableTimeInSeconds"]  # on demand
    assert job["TrainingTimeInSeconds"] < 10


def test_a_job_survives_a_server_crash_and_resumes_from_its_checkpoint(tmp_path: Path):
    first = start_server(tmp_path / "state", period=2.0)
    try:
        sm, s3 = first.client("sagemaker"), first.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="iris/train/iris.csv",
                      Body=_iris_csv())
        name = "survives"
        request = _request(s3, name, COUNTER, f"s3://{BUCKET}/iris/train/",
                           HyperParameters={"epochs": "60", "epoch-seconds": "0.1"},
                           CheckpointConfig={"S3Uri": f"s3://{BUCKET}/checkpoints/{name}"})
        sm.create_training_job(**request)
        _wait_for(sm, name, _checkpointed_past(s3, f"checkpoints/{name}/progress.json", 5))
    finally:
        stop_server(first, signal.SIGKILL)  # a crash: no chance to settle anything
    second = start_server(first.state_dir, period=2.0)
    try:
        sm, s3 = second.client("sagemaker"), second.client("s3")
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
        assert statuses[:3] == ["Starting", "Downloading", "Training"]
        assert statuses[3:] == ["Restarting", "Starting", "Downloading", "Training",
                                "Uploading", "Completed"]
        archive = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(archive["Body"].read())) as tar:
            history = json.load(tar.extractfile("history.json"))  # type: ignore[arg-type]
        assert len(history) == 2 and history[1] > 5
    finally:
        stop_server(second)


def _iris_csv() -> bytes:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return "\n".join(",".join(str(v) for v in [label, *features])
                     for label, features in zip(y, X, strict=True)).encode()


def test_sagemaker_python_sdk_estimator_fits_on_spot(server: RunningServer, iris_channel: str,
                                                     sdk_session, tmp_path: Path):  # noqa: F811
    """The SDK's own SKLearn estimator: it uploads sourcedir.tar.gz, JSON-encodes the
    hyperparameters, adds its debugger and profiler configs, and waits on Describe."""
    from sagemaker.sklearn import SKLearn

    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(COUNTER)
    estimator = SKLearn(
        entry_point="train.py", source_dir=str(source), framework_version="1.2-1",
        py_version="py3", instance_type="ml.m5.large", instance_count=1, role=ROLE,
        sagemaker_session=sdk_session, hyperparameters={"epochs": 3, "epoch-seconds": 0.1},
        output_path=f"s3://{BUCKET}/sdk-output", use_spot_instances=True, max_run=600,
        max_wait=1200, checkpoint_s3_uri=f"s3://{BUCKET}/sdk-checkpoints")
    estimator.fit({"train": iris_channel}, logs="None")
    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    assert estimator.model_data == (
        f"s3://{BUCKET}/sdk-output/{job['TrainingJobName']}/output/model.tar.gz")
