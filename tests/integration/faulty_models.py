"""Python-runtime models that misbehave on purpose: slow ones, and ones that crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SLOW_HANDLER = '''
import os
import time

def model_fn(model_dir):
    return lambda data: data

def predict_fn(data, model):
    if os.environ.get("PREDICT_LOG"):  # one line per prediction started
        with open(os.environ["PREDICT_LOG"], "a") as log:
            log.write("started\\n")
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "0.4")))
    return model(data)
'''

# Loads fine, passes /ping, then takes the whole process down on the first request.
CRASHING_HANDLER = '''
import os

def model_fn(model_dir):
    return lambda data: data

def predict_fn(data, model):
    os._exit(3)
'''


def model_tree(root: Path, handler: str) -> Path:
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / "inference.py").write_text(handler)
    return root


def deploy_python(sm: Any, name: str, tree: Path, count: int,
                  env: dict[str, str] | None = None) -> None:
    sm.create_model(
        ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/t",
        PrimaryContainer={"Image": "tideserve/python", "ModelDataUrl": f"file://{tree}",
                          "Environment": env or {}},
    )
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.c5.large",
        "InitialInstanceCount": count}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


