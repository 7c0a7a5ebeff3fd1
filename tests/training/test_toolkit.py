"""What a script sees, as the SageMaker training toolkit gives it (spec §4.5-4.6): the SDK's
JSON-encoded hyperparameters decoded, reserved ones split off, `--key value` arguments in key
order, SM_* variables naming the job's real directories, /opt/ml paths rewritten."""

from __future__ import annotations

import json
from pathlib import Path

from tideserve.cost.catalog import Catalog
from tideserve.training.metrics import final_metrics
from tideserve.training.process import error_line
from tideserve.training.rows import savings
from tideserve.training.specs import TrainingJobSpec
from tideserve.training.toolkit import Layout, command, command_args, config_files, environment
from tideserve.training.transfer import relative

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def spec(**hps: str) -> TrainingJobSpec:
    return TrainingJobSpec.parse({
        "TrainingJobName": "job-1", "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": '"train.py"',
                            "sagemaker_submit_directory": '"s3://bkt/job-1/source/sourcedir.tar.gz"',
                            "sagemaker_container_log_level": "20", **hps},
        "InputDataConfig": [
            {"ChannelName": name, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://bkt/{name}/"}}}
            for name in ("training", "testing")],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CheckpointConfig": {"S3Uri": "s3://bkt/ckpt"},
    }, Catalog.default())


def test_arguments_follow_the_toolkit():
    assert command_args({"epochs": 10, "b": True}) == ["-b", "True", "--epochs", "10"]
    assert command_args({"opts": {"y": 2, "x": 1}, "lr": 0.01, "none": None}) == [
        "--lr", "0.01", "--none", "", "--opts", "x=1,y=2"]


def test_environment_names_real_directories(tmp_path: Path):
    job = spec(epochs="3", optimizer='"adam"', ckpt='"/opt/ml/checkpoints/run"')
    layout = Layout(tmp_path / "opt-ml")
    env = environment(job, layout, "arn:job", "us-east-1", base={})
    assert env["SM_MODEL_DIR"] == str(tmp_path / "opt-ml" / "model")
    assert env["SM_CHANNELS"] == '["testing","training"]'
    assert env["SM_CHANNEL_TRAINING"] == str(tmp_path / "opt-ml" / "input" / "data" / "training")
    assert json.loads(env["SM_HPS"]) == {
        "epochs": 3, "optimizer": "adam", "ckpt": str(tmp_path / "opt-ml" / "checkpoints" / "run")}
    assert env["SM_HP_OPTIMIZER"] == "adam" and env["SM_HP_EPOCHS"] == "3"
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "opt-ml" / "output" / "data")
    assert env["SM_CHECKPOINT_DIR"] == str(tmp_path / "opt-ml" / "checkpoints")
    assert (env["SM_CURRENT_HOST"], env["SM_HOSTS"]) == ("algo-1", '["algo-1"]')
    assert env["TRAINING_JOB_NAME"] == "job-1" and env["SM_USER_ENTRY_POINT"] == "train.py"
    argv = command(job, layout)
    assert argv[1:] == ["train.py", "--ckpt", str(layout.root / "checkpoints" / "run"),
                        "--epochs", "3", "--optimizer", "adam"]
    files = config_files(job, layout)
    assert files["inputdataconfig.json"]["training"]["TrainingInputMode"] == "File"
    assert files["resourceconfig.json"]["current_host"] == "algo-1"


def test_channel_paths_and_failure_lines_and_savings():
    assert relative("s3://b/data/train/a.csv", "s3://b/data/train/") == "a.csv"
    assert relative("s3://b/data/train/x/a.csv", "s3://b/data/train") == "x/a.csv"
    assert relative("s3://b/data/train.csv", "s3://b/data/train.csv") == "train.csv"
    assert relative("s3://b/data/training/a.csv", "s3://b/data/tr") == "training/a.csv"
    traceback = ('epoch 1\nTraceback (most recent call last):\n  File "train.py", line 3\n'
                 '    raise ValueError("no rows")\nValueError: no rows\n')
    assert error_line(traceback) == "ValueError: no rows"
    assert savings(500, 150) == "70.0%" and savings(None, None) == ""


def test_final_metrics_keep_the_last_match_of_each_definition():
    log = "epoch 1 loss: 0.9 acc: 0.5\nepoch 2 loss: 0.4 acc: 0.75\nloss: nan-ish\n"
    found = final_metrics(log, [{"Name": "loss", "Regex": r"loss: ([0-9\.]+)"},
                                {"Name": "acc", "Regex": r"acc: ([0-9\.]+)"},
                                {"Name": "never", "Regex": r"f1: ([0-9\.]+)"},
                                {"Name": "bad", "Regex": r"(unclosed"}], at=10.0)
    assert found == [{"MetricName": "loss", "Value": 0.4, "Timestamp": 10.0},
                     {"MetricName": "acc", "Value": 0.75, "Timestamp": 10.0}]
