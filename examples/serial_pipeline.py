"""A serial inference pipeline of two containers, deployed and invoked through boto3 only,
against a running `tideserve up`.

1. makes raw tabular data (5 numeric features of scikit-learn's breast-cancer set and a
   categorical `site` column) and fits the preprocessing: a standard scaler and a one-hot
   encoding, saved as JSON next to a preprocessing `inference.py`;
2. trains an XGBoost model on the preprocessed features;
3. packs each as a SageMaker model.tar.gz and creates one model with both containers
   (`Containers=[preprocess, xgboost]`, InferenceExecutionConfig Serial): the first answers
   CSV (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv), which becomes the second one's request;
4. deploys it, sends raw CSV rows, and checks the answer against the same transform and
   predict computed here;
5. prints each container's ContainerLatency from CloudWatch, then deletes what it made.

Start the server first, in the folder whose `.tideserve` it should use:

    tideserve up --port 8080 --state-dir .tideserve
    export AWS_SHARED_CREDENTIALS_FILE=$PWD/.tideserve/credentials   # in a second terminal
    python examples/serial_pipeline.py         # TIDESERVE_URL overrides http://127.0.0.1:8080
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np

URL = os.environ.get("TIDESERVE_URL", "http://127.0.0.1:8080")
NAME = "serial-pipeline-example"
ROLE = "arn:aws:iam::123456789012:role/example"
SITES = ["north", "south", "west"]

PREPROCESS = '''
import json
from pathlib import Path

import numpy as np


def model_fn(model_dir):
    return json.loads((Path(model_dir) / "preprocess.json").read_text())


def input_fn(body, content_type):
    return [line.split(",") for line in body.strip().splitlines()]


def predict_fn(rows, params):
    out = []
    for row in rows:
        scaled = (np.asarray(row[:-1], dtype=float) - params["mean"]) / params["std"]
        onehot = [float(row[-1].strip() == site) for site in params["sites"]]
        out.append([*scaled.tolist(), *onehot])
    return out


def output_fn(rows, accept):
    return "\\n".join(",".join(repr(v) for v in row) for row in rows), "text/csv"
'''


def preprocess(raw: np.ndarray, sites: list[str], mean: np.ndarray, std: np.ndarray):
    onehot = np.array([[float(s == k) for k in SITES] for s in sites])
    return np.hstack([(raw - mean) / std, onehot])


def pack(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.resolve().as_uri()


def build(folder: Path):
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    raw = X[:, :5]
    sites = [SITES[i] for i in np.random.default_rng(0).integers(0, 3, len(raw))]
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(preprocess(raw, sites, mean, std), label=y),
                        num_boost_round=30)
    params = {"mean": mean.tolist(), "std": std.tolist(), "sites": SITES}
    pre_url = pack(folder / "preprocess.tar.gz", {
        "preprocess.json": json.dumps(params).encode(),
        "code/inference.py": PREPROCESS.encode()})
    booster.save_model(str(folder / "xgboost-model.json"))
    xgb_url = pack(folder / "xgboost.tar.gz",
                   {"xgboost-model.json": (folder / "xgboost-model.json").read_bytes()})
    return raw, sites, mean, std, booster, pre_url, xgb_url


def clients():
    if "AWS_SHARED_CREDENTIALS_FILE" not in os.environ and Path(".tideserve/credentials").exists():
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(".tideserve/credentials").resolve())
    session = boto3.Session(region_name="us-east-1")
    return (session.client("sagemaker", endpoint_url=URL),
            session.client("sagemaker-runtime", endpoint_url=URL),
            session.client("cloudwatch", endpoint_url=URL))


def deploy(sm, pre_url: str, xgb_url: str) -> None:
    sm.create_model(
        ModelName=NAME, ExecutionRoleArn=ROLE,
        Containers=[
            {"ContainerHostname": "preprocess", "Image": "tideserve/python",
             "ModelDataUrl": pre_url,
             "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}},
            {"ContainerHostname": "xgboost", "Image": "tideserve/xgboost",
             "ModelDataUrl": xgb_url},
        ],
        InferenceExecutionConfig={"Mode": "Serial"},
    )
    sm.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": NAME, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
    started = time.monotonic()
    sm.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
    print(f"endpoint {NAME} in service after {time.monotonic() - started:.1f} s "
          "(one instance running both containers)")


def container_latencies(cw) -> dict[str, float]:
    """Average ContainerLatency (µs) per container, once the server has flushed a period."""
    out: dict[str, float] = {}
    deadline = time.monotonic() + 90
    for container in ("preprocess", "xgboost"):
        while time.monotonic() < deadline:
            now = time.time()
            points = cw.get_metric_statistics(
                Namespace="AWS/SageMaker", MetricName="ContainerLatency",
                Dimensions=[{"Name": "EndpointName", "Value": NAME},
                            {"Name": "VariantName", "Value": "AllTraffic"},
                            {"Name": "ContainerName", "Value": container}],
                StartTime=now - 600, EndTime=now + 60, Period=60,
                Statistics=["Average"])["Datapoints"]
            if points:
                out[container] = float(np.mean([p["Average"] for p in points]))
                break
            time.sleep(1)
    return out


def clean_up(sm) -> None:
    for call, kwargs in ((sm.delete_endpoint, {"EndpointName": NAME}),
                         (sm.delete_endpoint_config, {"EndpointConfigName": NAME}),
                         (sm.delete_model, {"ModelName": NAME})):
        try:
            call(**kwargs)
        except sm.exceptions.ClientError:
            pass


def main() -> None:
    sm, rt, cw = clients()
    clean_up(sm)  # a previous run's leftovers
    with tempfile.TemporaryDirectory() as tmp:
        raw, sites, mean, std, booster, pre_url, xgb_url = build(Path(tmp))
        try:
            deploy(sm, pre_url, xgb_url)
            rows = "\n".join(",".join([*(repr(float(v)) for v in r), s])
                             for r, s in zip(raw[:8], sites[:8], strict=True))
            print("raw request:\n  " + rows.splitlines()[0] + "\n  ...")
            resp = rt.invoke_endpoint(EndpointName=NAME, Body=rows, ContentType="text/csv",
                                      Accept="application/json")
            answer = np.asarray(json.loads(resp["Body"].read())).ravel()
            expected = booster.inplace_predict(preprocess(raw[:8], sites[:8], mean, std))
            print(f"pipeline answer ({resp['ContentType']}): {np.round(answer, 4).tolist()}")
            assert np.allclose(answer, expected, rtol=1e-6), (answer, expected)
            print("matches preprocess + XGBoost predict computed here")
            for _ in range(20):
                rt.invoke_endpoint(EndpointName=NAME, Body=rows, ContentType="text/csv")
            for container, us in container_latencies(cw).items():
                print(f"ContainerLatency {container}: {us:.0f} µs on average")
        finally:
            clean_up(sm)


if __name__ == "__main__":
    main()
