"""The rest of the real-time contract on a live server: a user's own server command as an
instance, a dead instance replaced while its peers absorb the traffic, s3:// model data from
the embedded object store, the CLI, Prometheus, GetMetricData, instance CPU/memory metrics,
and every response shape checked against botocore's model."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from botocore.validate import ParamValidator

from tests.integration.test_realtime_endpoints import deploy, wait_in_service, wait_until_created
from tests.support import RunningServer, csv_rows

pytestmark = pytest.mark.integration

ECHO_SERVER = '''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = body.upper()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


def instance_pids(server: RunningServer, endpoint: str) -> list[int]:
    with sqlite3.connect(server.state_dir / "tideserve.db") as db:
        rows = db.execute("SELECT pid FROM instances WHERE endpoint_name = ?", (endpoint,))
        return [r[0] for r in rows]


def test_a_users_own_server_command_serves_as_the_instance(server: RunningServer, tmp_path):
    code = tmp_path / "byo"
    (code / "code").mkdir(parents=True)
    (code / "code" / "serve.py").write_text(ECHO_SERVER)
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    sm.create_model(
        ModelName="byo", ExecutionRoleArn="arn:aws:iam::123456789012:role/t",
        PrimaryContainer={
            "Image": "tideserve/python", "ModelDataUrl": f"file://{code}",
            "Environment": {"TIDESERVE_SERVE_COMMAND": f"{sys.executable} code/serve.py {{port}}"},
        },
    )
    sm.create_endpoint_config(EndpointConfigName="byo", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "byo", "InstanceType": "ml.c5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="byo", EndpointConfigName="byo")
    wait_in_service(sm, "byo")
    resp = rt.invoke_endpoint(EndpointName="byo", Body=b"hello tide", ContentType="text/plain")
    assert resp["Body"].read() == b"HELLO TIDE"
    assert resp["ContentType"] == "text/plain"


def test_a_killed_instance_is_replaced_and_its_peer_takes_the_traffic(
    server: RunningServer, trained
):
    model, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "phoenix", str(archive), count=2)
    wait_in_service(sm, "phoenix")
    victim = instance_pids(server, "phoenix")[0]
    os.kill(victim, signal.SIGKILL)
    body = csv_rows(X[:2])
    for _ in range(40):  # connections to the dead instance are refused and retried once
        resp = rt.invoke_endpoint(EndpointName="phoenix", Body=body, ContentType="text/csv")
        np.testing.assert_array_equal(
            np.asarray(json.loads(resp["Body"].read())).ravel(), model.predict(X[:2])
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = instance_pids(server, "phoenix")
        variant = sm.describe_endpoint(EndpointName="phoenix")["ProductionVariants"][0]
        if victim not in pids and variant["CurrentInstanceCount"] == 2:
            break
        time.sleep(0.3)
    assert victim not in pids
    assert variant["CurrentInstanceCount"] == 2


def test_a_model_uploaded_with_boto3_s3_is_deployed_from_s3(server: RunningServer, trained):
    model, X, archive, _ = trained
    s3 = server.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(archive), "models", "cancer/model.tar.gz")
    assert s3.head_object(Bucket="models", Key="cancer/model.tar.gz")["ContentLength"] == (
        archive.stat().st_size)
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "from-s3", "s3://models/cancer/model.tar.gz")
    wait_in_service(sm, "from-s3")
    resp = rt.invoke_endpoint(EndpointName="from-s3", Body=csv_rows(X[:1]), ContentType="text/csv")
    assert json.loads(resp["Body"].read()) == [int(model.predict(X[:1])[0])]


def test_the_cli_deploys_invokes_lists_and_reads_metrics(server: RunningServer, trained, tmp_path):
    _, X, archive, _ = trained
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(server.state_dir / "credentials")}
    common = ["--url", server.url, "--state-dir", str(server.state_dir)]

    def cli(*args: str, stdin: str | None = None) -> str:
        out = subprocess.run([sys.executable, "-m", "tideserve.cli", *args], input=stdin,
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    spec = tmp_path / "deploy.yaml"
    spec.write_text(
        f"name: cli-yaml\nmodel:\n  image: tideserve/sklearn\n  model_data_url: {archive}\n"
        "variants:\n  - name: AllTraffic\n    instance_type: ml.m5.large\n    instance_count: 1\n"
    )
    described = json.loads(cli("deploy", "--file", str(spec), *common))
    assert described["EndpointStatus"] == "InService"
    cli("deploy", "--name", "cli-flags", "--model-data", str(archive), *common)
    answer = cli("invoke", "cli-yaml", *common, stdin=csv_rows(X[:2]))
    assert len(json.loads(answer)) == 2
    listing = cli("endpoints", *common)
    assert "cli-yaml" in listing and "cli-flags" in listing and "1/1" in listing
    assert "Invocations:" in cli("metrics", "cli-yaml", "--period", "2", *common)


def test_prometheus_exposition_counts_invocations(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "scraped", str(archive))
    wait_in_service(sm, "scraped")
    for _ in range(3):
        rt.invoke_endpoint(EndpointName="scraped", Body=csv_rows(X[:1]), ContentType="text/csv")
    text = httpx.get(server.url + "/metrics").text
    line = next(ln for ln in text.splitlines()
                if ln.startswith("tideserve_invocations_total") and 'endpoint="scraped"' in ln)
    assert float(line.rsplit(" ", 1)[1]) == 3.0
    sm.delete_endpoint(EndpointName="scraped")
    deadline = time.monotonic() + 20  # a few 2-s periods
    while 'endpoint="scraped"' in httpx.get(server.url + "/metrics").text:
        assert time.monotonic() < deadline, "a deleted endpoint's series stay on /metrics"
        time.sleep(0.5)


def test_endpoint_names_follow_one_rule_in_both_planes(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "cased", str(archive))
    wait_in_service(sm, "cased")
    assert sm.describe_endpoint(EndpointName="CASED")["EndpointName"] == "cased"
    answer = rt.invoke_endpoint(EndpointName="CASED", Body=csv_rows(X[:2]),
                                ContentType="text/csv")
    assert len(json.loads(answer["Body"].read())) == 2
    with pytest.raises(rt.exceptions.ValidationError, match="regular expression pattern"):
        rt.invoke_endpoint(EndpointName="bad_name", Body=b"1", ContentType="text/csv")
    with pytest.raises(rt.exceptions.ValidationError, match="not found"):
        rt.invoke_endpoint(EndpointName="absent", Body=b"1", ContentType="text/csv")


def test_a_json_body_nested_too_deeply_is_the_clients_fault(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "nested", str(archive))
    wait_in_service(sm, "nested")
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(rt.exceptions.ModelError) as caught:
        rt.invoke_endpoint(EndpointName="nested", Body=body, ContentType="application/json")
    assert caught.value.response["OriginalStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] == "ModelError"


def test_get_metric_data_and_instance_utilisation(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt, cw = (server.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    deploy(sm, "watched", str(archive))
    wait_in_service(sm, "watched")
    start = datetime.now(UTC) - timedelta(seconds=5)
    for _ in range(10):
        rt.invoke_endpoint(EndpointName="watched", Body=csv_rows(X[:1]), ContentType="text/csv")
    dims = [{"Name": "EndpointName", "Value": "watched"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    queries = [
        {"Id": "inv", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker",
                                                "MetricName": "Invocations", "Dimensions": dims},
                                     "Period": 60, "Stat": "Sum"}},
        {"Id": "cpu", "MetricStat": {"Metric": {"Namespace": "/aws/sagemaker/Endpoints",
                                                "MetricName": "CPUUtilization",
                                                "Dimensions": dims},
                                     "Period": 60, "Stat": "Maximum"}},
    ]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = cw.get_metric_data(MetricDataQueries=queries, StartTime=start,
                                  EndTime=datetime.now(UTC) + timedelta(minutes=1))
        results = {r["Id"]: r for r in resp["MetricDataResults"]}
        if sum(results["inv"]["Values"]) >= 10 and results["cpu"]["Values"]:
            break
        time.sleep(0.5)
    assert sum(results["inv"]["Values"]) == 10
    assert results["cpu"]["Values"] and 0 <= max(results["cpu"]["Values"]) <= 200  # 2 vCPUs


def test_responses_match_botocores_output_shapes(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, "shaped", str(archive))
    wait_in_service(sm, "shaped")
    calls = {
        "DescribeEndpoint": {"EndpointName": "shaped"},
        "DescribeEndpointConfig": {"EndpointConfigName": "shaped"},
        "DescribeModel": {"ModelName": "shaped"},
        "ListEndpoints": {},
        "ListModels": {},
        "ListEndpointConfigs": {},
        "ListTags": {"ResourceArn": sm.describe_endpoint(EndpointName="shaped")["EndpointArn"]},
    }
    model = sm.meta.service_model
    for op, params in calls.items():
        method = getattr(sm, "_".join(
            w.lower() for w in __import__("re").findall("[A-Z][a-z]+", op)))
        resp = method(**params)
        resp.pop("ResponseMetadata")
        report = ParamValidator().validate(resp, model.operation_model(op).output_shape)
        assert not report.has_errors(), (op, report.generate_report())


def test_tags_round_trip(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, "tagged", str(archive))
    arn = sm.describe_endpoint(EndpointName="tagged")["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "risk"},
                                       {"Key": "env", "Value": "dev"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"},
                                                     {"Key": "team", "Value": "risk"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["env"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "risk"}]


def test_archive_with_a_link_out_of_the_tree_is_refused(server: RunningServer, tmp_path: Path):
    evil = tmp_path / "link.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("model.skops")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    sm = server.client("sagemaker")
    deploy(sm, "linky", str(evil))
    desc = wait_until_created(sm, "linky")
    assert desc["EndpointStatus"] == "Failed"
    assert "model.skops" in desc["FailureReason"]


def test_a_corrupt_archive_fails_the_endpoint_with_a_reason(server: RunningServer, tmp_path):
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 definitely not a gzip stream")
    sm = server.client("sagemaker")
    deploy(sm, "corrupt", str(broken))
    desc = wait_until_created(sm, "corrupt")
    assert desc["EndpointStatus"] == "Failed"
    assert "model.tar.gz" in desc["FailureReason"]
    # The server still serves everything else.
    assert sm.list_endpoints()["Endpoints"]
