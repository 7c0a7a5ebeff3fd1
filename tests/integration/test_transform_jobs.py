"""Batch transform through boto3 against a real `tideserve up`: 20 input objects on 2
instances, every `.out` with every row in order; the ways a job fails (a record over
MaxPayloadInMB, garbage CSV, a missing prefix, a model that raises), each naming its cause,
with the server serving on; Stop; and a server killed mid-job resuming it without writing any
output twice."""

from __future__ import annotations

import gzip
import json
import re
import signal
import time
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.support import RunningServer, csv_rows, pack_skops, start_server, stop_server
from tideserve.cli import main
from tideserve.transform.cli import fetch_progress

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/test"
SLOW_HANDLER = '''
import os, time

def predict_fn(data, model):
    time.sleep(float(os.environ.get("PREDICT_SLEEP", "0")))
    return model.predict(data)
'''
RAISING_HANDLER = '''
def predict_fn(data, model):
    if (data[:, 0] < 0).any():
        raise RuntimeError("negative radius is not a tumour")
    return model.predict(data)
'''


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def create_model(sm: Any, name: str, archive: Any) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive)})


def start_job(sm: Any, name: str, model: str, uri: str, *, count: int = 1,
              **extra: Any) -> None:
    tin = {"DataSource": {"S3DataSource": {"S3DataType": extra.pop("data_type", "S3Prefix"),
                                           "S3Uri": uri}},
           "ContentType": "text/csv", "SplitType": "Line"}
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, TransformInput=tin,
        TransformOutput={"S3OutputPath": f"s3://transformed/{name}", "Accept": "text/csv",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": count}, **extra)


def wait_done(sm: Any, name: str, attempts: int = 240) -> dict[str, Any]:
    try:
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": attempts})
    except WaiterError:
        pass  # Failed: the caller reads why
    return sm.describe_transform_job(TransformJobName=name)


def output(s3: Any, job: str, key: str) -> bytes:
    return s3.get_object(Bucket="transformed", Key=f"{job}/{key}.out")["Body"].read()


def predictions(body: bytes) -> list[int]:
    return [int(float(v)) for v in body.decode().split()]


def test_twenty_objects_on_two_instances_every_row_in_order(server: RunningServer, trained,
                                                            capsys):
    model, X, archive, _ = trained
    sm, s3 = server.client("sagemaker"), server.client("s3")
    ensure_bucket(s3, "batch-in")
    rng = np.random.default_rng(7)
    inputs = {}
    for i in range(19):
        rows = X[rng.integers(0, len(X), size=int(rng.integers(1, 400)))]
        inputs[f"many/part-{i:02d}.csv"] = rows
    big = np.tile(X, (300, 1))  # 170 700 rows, ~36 MB of CSV: several 6 MB mini-batches
    inputs["many/sub/big.csv"] = big
    for key, rows in inputs.items():
        s3.put_object(Bucket="batch-in", Key=key, Body=(csv_rows(rows) + "\n").encode())
    assert s3.head_object(Bucket="batch-in", Key="many/sub/big.csv")["ContentLength"] > 30e6
    create_model(sm, "tx-model", archive)
    start_job(sm, "tx-twenty", "tx-model", "s3://batch-in/many/", count=2)

    desc = wait_done(sm, "tx-twenty")
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TransformStartTime"] <= desc["TransformEndTime"]
    for key, rows in inputs.items():
        got = predictions(output(s3, "tx-twenty", key.removeprefix("many/")))
        assert got == model.predict(rows).astype(int).tolist(), key
    progress = fetch_progress(server.client("sagemaker"), "tx-twenty")
    assert progress["RecordsDone"] == sum(len(r) for r in inputs.values())
    assert progress["ObjectsDone"] == 20 and progress["BytesDone"] == progress["BytesTotal"]
    listed = sm.list_transform_jobs(NameContains="twenty", StatusEquals="Completed")
    assert [j["TransformJobName"] for j in listed["TransformJobSummaries"]] == ["tx-twenty"]
    cli = ["--url", server.url, "--state-dir", str(server.state_dir)]
    assert main(["jobs", *cli]) == 0
    assert re.search(r"tx-twenty\s+Transform\s+Completed", capsys.readouterr().out)
    assert main(["jobs", "tx-twenty", "--once", *cli]) == 0
    bar = capsys.readouterr().out
    assert "100.0%" in bar and f"records {progress['RecordsDone']:,}" in bar
    # CloudWatch Logs: each instance's output and the data log, in the jobs' group.
    logs = server.client("logs")
    streams = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix="tx-twenty/",
    )["logStreams"]]
    assert "tx-twenty/data-log" in streams
    assert len([s for s in streams if re.fullmatch(r"tx-twenty/tx-twenty-t\d-\w+-\d+", s)]) == 2
    assert not any(g["logGroupName"].endswith("/tx-twenty") for g in logs.describe_log_groups(
        logGroupNamePrefix="/aws/sagemaker/Endpoints/")["logGroups"])
    # Billed: two instances, each from its start request until it stopped.
    ce = server.client("ce")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    costs = ce.get_cost_and_usage(TimePeriod={"Start": day, "End": tomorrow},
                                  Granularity="DAILY", Metrics=["UnblendedCost"])
    assert float(costs["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"]) > 0


def test_manifest_gzip_single_record_filters_and_join(server: RunningServer, trained):
    model, X, archive, _ = trained
    sm, s3 = server.client("sagemaker"), server.client("s3")
    ensure_bucket(s3, "batch-dp")
    rows = [f"id{i}," + ",".join(repr(float(v)) for v in X[i]) for i in range(40)]
    s3.put_object(Bucket="batch-dp", Key="in/a.csv.gz",
                  Body=gzip.compress(("\n".join(rows[:25]) + "\n").encode()))
    s3.put_object(Bucket="batch-dp", Key="in/b.csv.gz",
                  Body=gzip.compress(("\n".join(rows[25:]) + "\n").encode()))
    s3.put_object(Bucket="batch-dp", Key="in/unlisted.csv.gz", Body=b"not in the manifest")
    manifest = [{"prefix": "s3://batch-dp/in/"}, "b.csv.gz", "a.csv.gz"]
    s3.put_object(Bucket="batch-dp", Key="manifest.json", Body=json.dumps(manifest).encode())
    create_model(sm, "tx-dp", archive)
    sm.create_transform_job(
        TransformJobName="tx-dp", ModelName="tx-dp", BatchStrategy="SingleRecord",
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "ManifestFile", "S3Uri": "s3://batch-dp/manifest.json"}},
            "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"},
        TransformOutput={"S3OutputPath": "s3://transformed/tx-dp", "Accept": "text/csv",
                         "AssembleWith": "Line"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input",
                        "OutputFilter": "$[0,-1]"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    desc = wait_done(sm, "tx-dp")
    assert desc["TransformJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["DataProcessing"]["OutputFilter"] == "$[0,-1]"
    expected = model.predict(X[:40]).tolist()
    got = output(s3, "tx-dp", "a.csv.gz") + output(s3, "tx-dp", "b.csv.gz")
    assert got.decode().splitlines() == [f"id{i},{expected[i]}" for i in range(40)]
    with pytest.raises(ClientError):
        output(s3, "tx-dp", "unlisted.csv.gz")


def test_bad_inputs_fail_their_jobs_with_the_cause(server: RunningServer, trained, tmp_path):
    model, X, archive, _ = trained
    raising = pack_skops(model, tmp_path / "raising", {"code/inference.py": RAISING_HANDLER})
    sm, s3 = server.client("sagemaker"), server.client("s3")
    ensure_bucket(s3, "batch-bad")
    good = csv_rows(X[:50]) + "\n"
    huge_line = ",".join(["1.0"] * 400_000)  # one 1.6 MB record
    s3.put_object(Bucket="batch-bad", Key="big/x.csv",
                  Body=(csv_rows(X[:2]) + "\n" + huge_line + "\n").encode())
    garbage = csv_rows(X[:4]) + "\nnot,a,number\n" + csv_rows(X[4:10]) + "\n"
    s3.put_object(Bucket="batch-bad", Key="mixed/good.csv", Body=good.encode())
    s3.put_object(Bucket="batch-bad", Key="mixed/garbage.csv", Body=garbage.encode())
    negative = csv_rows(X[:3]) + "\n" + csv_rows(-X[3:4]) + "\n"
    s3.put_object(Bucket="batch-bad", Key="neg/a.csv", Body=negative.encode())
    create_model(sm, "tx-plain", archive)
    create_model(sm, "tx-crashing", raising)
    start_job(sm, "tx-too-large", "tx-plain", "s3://batch-bad/big/", MaxPayloadInMB=1)
    start_job(sm, "tx-garbage", "tx-plain", "s3://batch-bad/mixed/")
    start_job(sm, "tx-missing", "tx-plain", "s3://batch-bad/nothing-here/")
    start_job(sm, "tx-raises", "tx-crashing", "s3://batch-bad/neg/",
              ModelClientConfig={"InvocationsMaxRetries": 0})

    too_large = wait_done(sm, "tx-too-large")
    assert too_large["TransformJobStatus"] == "Failed"
    assert "s3://batch-bad/big/x.csv: record 3 is larger than MaxPayloadInMB (1 MB)" in \
        too_large["FailureReason"]
    garbled = wait_done(sm, "tx-garbage")
    assert garbled["TransformJobStatus"] == "Failed"
    assert "s3://batch-bad/mixed/garbage.csv: record 5:" in garbled["FailureReason"]
    assert predictions(output(s3, "tx-garbage", "good.csv")) == model.predict(X[:50]).tolist()
    with pytest.raises(ClientError):
        output(s3, "tx-garbage", "garbage.csv")  # a failed object leaves no output
    data_log = (server.state_dir / "logs" / "transform" / "tx-garbage" / "data-log").read_text()
    assert "[sagemaker logs]: MaxConcurrentTransforms=" in data_log
    assert "[sagemaker logs]: batch-bad/mixed/garbage.csv: ClientError: " in data_log
    missing = wait_done(sm, "tx-missing")
    assert missing["TransformJobStatus"] == "Failed"
    assert "No objects were found under the input S3Uri s3://batch-bad/nothing-here/" in \
        missing["FailureReason"]
    raised = wait_done(sm, "tx-raises")
    assert raised["TransformJobStatus"] == "Failed"
    assert "s3://batch-bad/neg/a.csv: record 4:" in raised["FailureReason"]
    assert "negative radius is not a tumour" in raised["FailureReason"]

    pages = sm.get_paginator("list_transform_jobs").paginate(
        NameContains="tx-", StatusEquals="Failed", SortBy="Name", SortOrder="Ascending",
        PaginationConfig={"PageSize": 2})
    names = [j["TransformJobName"] for page in pages for j in page["TransformJobSummaries"]]
    assert names == sorted(names) and {"tx-too-large", "tx-garbage", "tx-missing",
                                       "tx-raises"} <= set(names)
    # The server serves on: the waiter raises on Failed and on an unknown job.
    with pytest.raises(WaiterError):
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="tx-raises", WaiterConfig={"Delay": 0.2, "MaxAttempts": 2})
    with pytest.raises(WaiterError):
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="tx-nobody", WaiterConfig={"Delay": 0.2, "MaxAttempts": 2})
    with pytest.raises(ClientError, match="is in status Failed"):
        sm.stop_transform_job(TransformJobName="tx-raises")
    with pytest.raises(ClientError, match="ResourceInUse"):
        start_job(sm, "tx-raises", "tx-plain", "s3://batch-bad/neg/")
    with pytest.raises(ClientError, match="MaxConcurrentTransforms"):
        start_job(sm, "tx-over", "tx-plain", "s3://batch-bad/neg/", MaxPayloadInMB=30,
                  MaxConcurrentTransforms=4)
    with pytest.raises(ClientError, match="not supported"):
        start_job(sm, "tx-recordio", "tx-plain", "s3://batch-bad/neg/",
                  data_type="AugmentedManifestFile")


def test_stop_and_restart_resume_without_writing_twice(tmp_path, trained):
    model, X, _, _ = trained
    slow = pack_skops(model, tmp_path / "slow", {"code/inference.py": SLOW_HANDLER})
    srv = start_server(tmp_path / "state", period=2.0)
    try:
        sm, s3 = srv.client("sagemaker"), srv.client("s3")
        ensure_bucket(s3, "resume-in")
        for i in range(6):
            s3.put_object(Bucket="resume-in", Key=f"r/{i}.csv",
                          Body=(csv_rows(X[i * 10:(i + 1) * 10]) + "\n").encode())
        create_model(sm, "slow", slow)
        start_job(sm, "tx-resume", "slow", "s3://resume-in/r/",
                  Environment={"PREDICT_SLEEP": "1.0"})
        start_job(sm, "tx-stop", "slow", "s3://resume-in/r/")
        sm.stop_transform_job(TransformJobName="tx-stop")
        assert sm.describe_transform_job(TransformJobName="tx-stop")["TransformJobStatus"] in (
            "Stopping", "Stopped")
        out_dir = srv.state_dir / "s3" / "transformed" / "tx-resume"
        deadline = time.monotonic() + 90
        while len(list(out_dir.glob("*.out"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out_dir.glob("*.out")}
        assert 2 <= len(before) < 6
        stop_server(srv, signal.SIGKILL)
    finally:
        stop_server(srv)

    srv = start_server(tmp_path / "state", period=2.0)
    try:
        sm, s3 = srv.client("sagemaker"), srv.client("s3")
        stopped = wait_done(sm, "tx-stop")
        assert stopped["TransformJobStatus"] == "Stopped"
        resumed = wait_done(sm, "tx-resume")
        assert resumed["TransformJobStatus"] == "Completed", resumed.get("FailureReason")
        for i in range(6):
            got = predictions(output(s3, "tx-resume", f"{i}.csv"))
            assert got == model.predict(X[i * 10:(i + 1) * 10]).tolist()
        after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out_dir.glob("*.out")}
        for name, stamp in before.items():
            assert after[name] == stamp, f"{name} was written again after the restart"
        assert not (out_dir.parent / "tx-stop").exists()  # stopped: nothing published
        assert not list((srv.state_dir / "s3-tmp").glob("obj-*"))  # no staged file left
    finally:
        stop_server(srv)
