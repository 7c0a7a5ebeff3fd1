"""tideserve's spot transform (Environment TIDESERVE_SPOT=true), through boto3 against a real
`tideserve up` (period 2 s: the two-minute notice is 4 s): a job over 10 objects on 2 spot
instances, one interrupted mid-object through InterruptSpotInstance by the job's name,
completes with every row of every `.out` in order exactly once (the reclaimed instance's
unfinished object redone from the start), billed at the spot rate; an on-demand instance whose
process dies mid-object is replaced and the job completes. And the tag API on transform-job
and training-job ARNs sees the tags their Create calls stored."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_transform_jobs import (
    create_model,
    ensure_bucket,
    output,
    predictions,
    start_job,
    wait_done,
)
from tests.support import RunningServer, cost_by_purchase_type, csv_rows, pack_skops
from tideserve.client import tideserve_client
from tideserve.transform.cli import fetch_progress

pytestmark = pytest.mark.integration

# Slow in proportion to the rows: a 1 MB mini-batch (~8 700 rows of 120 bytes) takes ~4.4 s,
# so each big object (10 000 rows, 2 mini-batches one at a time: ~5 s) is still being
# transformed when its instance's 4 s notice runs out.
ROW_PAUSED_HANDLER = '''
import time

def predict_fn(data, model):
    time.sleep(len(data) * 0.0005)
    return model.predict(data)
'''

# The first request of the job kills its instance's process; the replacement's work.
CRASH_ONCE_HANDLER = '''
import os

def predict_fn(data, model):
    marker = os.environ["CRASH_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return model.predict(data)
'''


def test_a_spot_transform_interrupted_mid_job_writes_every_row_once(
        server: RunningServer, trained, tmp_path):
    model, X, _, _ = trained
    sm, s3 = server.client("sagemaker"), server.client("s3")
    ensure_bucket(s3, "spot-in")
    rng = np.random.default_rng(11)
    inputs: dict[str, Any] = {}
    for i in range(10):  # part-00 and part-01 lead each instance's queue: both big
        count = 10_000 if i < 2 else int(rng.integers(5, 40))
        inputs[f"spot/part-{i:02d}.csv"] = X[rng.integers(0, len(X), size=count)]
    for key, rows in inputs.items():
        s3.put_object(Bucket="spot-in", Key=key, Body=(csv_rows(rows) + "\n").encode())
    archive = pack_skops(model, tmp_path / "paused", {"code/inference.py": ROW_PAUSED_HANDLER})
    create_model(sm, "tx-spot-model", archive)
    name = "tx-spot"
    start_job(sm, name, "tx-spot-model", "s3://spot-in/spot/", count=2, MaxPayloadInMB=1,
              MaxConcurrentTransforms=1,
              Environment={"TIDESERVE_SPOT": "true"}, Tags=[{"Key": "team", "Value": "spot-tx"}])

    deadline = time.monotonic() + 60
    while fetch_progress(sm, name)["BytesDone"] == 0:  # the instances are transforming
        assert time.monotonic() < deadline, "the job never started reading"
        time.sleep(0.2)
    answer = tideserve_client(server.url, server.state_dir).interrupt_spot_instance(
        InstanceOrJob=name)
    assert answer["Holder"] == name and answer["InstanceId"].startswith("i-spot-")
    assert answer["NoticeSeconds"] == pytest.approx(4.0)
    again = tideserve_client(server.url, server.state_dir).interrupt_spot_instance(
        InstanceOrJob=answer["InstanceId"])  # by its instance id: the earlier notice stands
    assert (again["InstanceId"], again["ReclaimTime"]) == (answer["InstanceId"],
                                                           answer["ReclaimTime"])

    desc = wait_done(sm, name)
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["Environment"] == {"TIDESERVE_SPOT": "true"}
    for key, rows in inputs.items():  # every row once, in input order
        got = predictions(output(s3, name, key.removeprefix("spot/")))
        assert got == model.predict(rows).astype(int).tolist(), key
    progress = fetch_progress(sm, name)
    assert progress["RecordsDone"] == sum(len(r) for r in inputs.values())
    data_log = (server.state_dir / "logs" / "transform" / name / "data-log").read_text()
    assert f"{answer['InstanceId']}: spot interruption notice" in data_log
    assert f"{answer['InstanceId']}: reclaimed; its unfinished object goes back" in data_log

    # Billed at the spot rate, under the job's own tag (Cost Explorer).
    costs = cost_by_purchase_type(server, "team", "spot-tx")
    assert set(costs) == {"Spot Instances"} and costs["Spot Instances"] > 0

    # The tag API sees the tag CreateTransformJob stored, and edits it.
    arn = desc["TransformJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "spot-tx"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "night", "Value": "yes"}])
    sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "night", "Value": "yes"}]


def test_an_instance_that_crashes_mid_job_is_replaced(server: RunningServer, trained, tmp_path):
    model, X, _, _ = trained
    sm, s3 = server.client("sagemaker"), server.client("s3")
    ensure_bucket(s3, "crash-in")
    inputs = {f"crash/part-{i}.csv": X[i * 10:(i + 1) * 10] for i in range(3)}
    for key, rows in inputs.items():
        s3.put_object(Bucket="crash-in", Key=key, Body=(csv_rows(rows) + "\n").encode())
    archive = pack_skops(model, tmp_path / "crash", {"code/inference.py": CRASH_ONCE_HANDLER})
    create_model(sm, "tx-crash-model", archive)
    marker = tmp_path / "crashed"
    start_job(sm, "tx-crash", "tx-crash-model", "s3://crash-in/crash/",
              Environment={"CRASH_MARKER": str(marker)})
    desc = wait_done(sm, "tx-crash")
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert marker.exists()  # the first instance did crash
    for key, rows in inputs.items():
        got = predictions(output(s3, "tx-crash", key.removeprefix("crash/")))
        assert got == model.predict(rows).astype(int).tolist(), key
    data_log = (server.state_dir / "logs" / "transform" / "tx-crash" / "data-log").read_text()
    assert "the instance's process exited; its unfinished object goes to a replacement" \
        in data_log


def test_tags_on_a_training_job_arn(server: RunningServer):
    sm = server.client("sagemaker")
    name = "tagged-training"
    arn = sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                "sagemaker-scikit-learn:1.2-1-cpu-py3",
                                "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/SageMakerExecution",
        HyperParameters={"sagemaker_program": '"train.py"',
                         "sagemaker_submit_directory": '"s3://no-such-bucket/src.tar.gz"'},
        OutputDataConfig={"S3OutputPath": "s3://tagged-training-out/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        Tags=[{"Key": "team", "Value": "forecast"}])["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "forecast"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "research"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "research"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []
    with pytest.raises(ClientError, match="does not exist or is not taggable"):
        sm.list_tags(ResourceArn=arn.replace(name, "no-such-job"))
