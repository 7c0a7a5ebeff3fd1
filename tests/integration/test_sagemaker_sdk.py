"""The SageMaker Python SDK itself against a real `tideserve up`: SKLearnModel with an
entry_point and a source_dir deploys (the SDK uploads sourcedir.tar.gz to the embedded S3 and
sets SAGEMAKER_SUBMIT_DIRECTORY), predicts, finds its endpoint context and deletes the
endpoint, with only the setup the README documents."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_realtime_endpoints import wait_in_service
from tests.support import RunningServer

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BUCKET = "sdk-artifacts"
# The entry point: class-1 probabilities rather than the framework's labels, so an answer
# proves this code ran and not the model archive's stale code/.
INFERENCE = '''
import numpy as np
from helpers import positive_column

def predict_fn(data, model):
    return positive_column(model.predict_proba(np.asarray(data, dtype=float)))
'''
HELPERS = "def positive_column(probabilities):\n    return probabilities[:, 1]\n"
STALE = "raise RuntimeError('the model archive code/ must not be imported')\n"


@pytest.fixture
def sdk_session(server: RunningServer, monkeypatch, tmp_path):
    """The README's setup: AWS_ENDPOINT_URL, the server's credentials file, its region, and a
    sagemaker.Session with a default bucket (telemetry off: nothing leaves the machine)."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(server.state_dir / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # 2.x is what users run today
    import sagemaker  # the test extra's SDK 2.x (seconds to import: only where it is used)

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = {"SchemaVersion": "1.0",
              "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    return sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"),
                             default_bucket=BUCKET, sagemaker_config=config)


def _model_archive(tmp_path: Path, model) -> Path:
    """model.tar.gz with a skops model and a stale code/inference.py, as an old training job
    may have left it."""
    import skops.io

    skops.io.dump(model, tmp_path / "model.skops")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "model.skops", arcname="model.skops")
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(STALE)
        tar.addfile(info, io.BytesIO(STALE.encode()))
    return archive


def _source_dir(tmp_path: Path, requirements: str) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text(INFERENCE)
    (source / "helpers.py").write_text(HELPERS)
    (source / "requirements.txt").write_text(requirements)
    return source


def _iris_model():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(X, y), X


def test_sklearn_model_deploy_predict_delete(server: RunningServer, sdk_session, tmp_path):
    from sagemaker.sklearn import SKLearnModel

    model, X = _iris_model()
    model_data = sdk_session.upload_data(str(_model_archive(tmp_path, model)), key_prefix="iris")
    sm_model = SKLearnModel(
        model_data=model_data, role=ROLE, entry_point="inference.py",
        source_dir=str(_source_dir(tmp_path, "scikit-learn\nnumpy>=1.20\n")),
        framework_version="1.2-1", sagemaker_session=sdk_session,
    )
    # wait=False: the SDK's own wait polls DescribeEndpoint every 30 s, as against AWS.
    predictor = sm_model.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                endpoint_name="sdk-iris", wait=False)
    sm = server.client("sagemaker")
    container = sm.describe_model(ModelName=sm_model.name)["PrimaryContainer"]
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"].startswith(f"s3://{BUCKET}/")
    assert container["Image"].endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3")
    desc = wait_in_service(sm, "sdk-iris")
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")

    answer = np.asarray(predictor.predict(X[:5]))
    np.testing.assert_allclose(answer, model.predict_proba(X[:5])[:, 1])

    context = predictor.endpoint_context()
    assert context is not None and context.context_type == "Endpoint"
    assert context.source.source_uri == desc["EndpointArn"]
    assert context.context_name.startswith("sdk-iris-")

    predictor.delete_endpoint()
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    statuses = [e["EndpointStatus"] for e in sm.list_endpoints()["Endpoints"]
                if e["EndpointName"] == "sdk-iris"]
    assert "sdk-iris" not in names or statuses == ["Deleting"]
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_endpoint_config(EndpointConfigName="sdk-iris")


def test_missing_requirement_fails_the_endpoint_with_the_reason(
    server: RunningServer, sdk_session, tmp_path
):
    from sagemaker.sklearn import SKLearnModel

    model, _ = _iris_model()
    model_data = sdk_session.upload_data(str(_model_archive(tmp_path, model)), key_prefix="iris2")
    SKLearnModel(
        model_data=model_data, role=ROLE, entry_point="inference.py",
        source_dir=str(_source_dir(tmp_path, "tideserve-no-such-package>=1\n")),
        framework_version="1.2-1", sagemaker_session=sdk_session,
    ).deploy(initial_instance_count=1, instance_type="ml.m5.large",
             endpoint_name="sdk-missing-req", wait=False)
    sm = server.client("sagemaker")
    from botocore.exceptions import WaiterError

    with pytest.raises(WaiterError):  # the waiter gives up on Failed
        wait_in_service(sm, "sdk-missing-req")
    desc = sm.describe_endpoint(EndpointName="sdk-missing-req")
    assert desc["EndpointStatus"] == "Failed"
    assert "tideserve-no-such-package is not installed" in desc["FailureReason"]
    assert "does not pip-install" in desc["FailureReason"]


def test_pytorch_model_repacks_code_into_the_archive(server: RunningServer, sdk_session, tmp_path):
    """PyTorchModel downloads model.tar.gz, adds code/ and uploads it again, setting
    SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code: the repacked archive's own code serves."""
    import torch
    from sagemaker.pytorch import PyTorchModel

    net = torch.nn.Linear(4, 2)
    program = torch.export.export(net, (torch.zeros(3, 4),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "model.pt2", arcname="model.pt2")
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text(
        "import torch\n\ndef predict_fn(data, model):\n    with torch.no_grad():\n"
        "        return model(torch.as_tensor(data, dtype=torch.float32)).argmax(1).numpy()\n"
    )
    model = PyTorchModel(
        model_data=sdk_session.upload_data(str(tmp_path / "model.tar.gz"), key_prefix="pt"),
        role=ROLE, entry_point="inference.py", source_dir=str(source), framework_version="2.1",
        py_version="py310", sagemaker_session=sdk_session,
    )
    predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             endpoint_name="sdk-torch", wait=False)
    sm = server.client("sagemaker")
    env = sm.describe_model(ModelName=model.name)["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert wait_in_service(sm, "sdk-torch")["EndpointStatus"] == "InService"
    rows = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    expected = net(torch.from_numpy(rows)).argmax(1).detach().numpy()
    np.testing.assert_array_equal(np.asarray(predictor.predict(rows)), expected)
    predictor.delete_endpoint()
