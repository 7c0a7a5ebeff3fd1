"""CreateTrainingJob's input, checked once into a frozen spec.

The wire shape (lengths, patterns, enums, required members) is botocore's and is checked at
the edge (api/validation.py); what is left here is what the model cannot say: the
cross-field rules AWS applies (spot and MaxWaitTimeInSeconds), and what tideserve can run
(script mode of an AWS framework image on one instance, File input from s3://).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.cost.catalog import Catalog
from tideserve.errors import ValidationError
from tideserve.objectstore.keys import is_valid_bucket_name, parse_uri
from tideserve.training.images import training_framework

# StoppingCondition.MaxRuntimeInSeconds when absent: one day (API reference).
DEFAULT_MAX_RUNTIME_SECONDS = 86400
DEFAULT_CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
PROGRAM_HP = "sagemaker_program"
SUBMIT_DIRECTORY_HP = "sagemaker_submit_directory"


@dataclass(frozen=True)
class Channel:
    name: str
    s3_uri: str
    s3_data_type: str  # S3Prefix | ManifestFile
    distribution: str  # FullyReplicated | ShardedByS3Key (one instance: the same)
    content_type: str | None
    input_mode: str

    def config(self) -> dict[str, Any]:
        """This channel's entry in inputdataconfig.json, as the platform writes it."""
        out: dict[str, Any] = {"TrainingInputMode": self.input_mode,
                               "S3DistributionType": self.distribution,
                               "RecordWrapperType": "None"}
        if self.content_type:
            out["ContentType"] = self.content_type
        return out


@dataclass(frozen=True)
class TrainingJobSpec:
    name: str
    image: str
    framework: str  # sklearn | xgboost | pytorch
    hyperparameters: Mapping[str, str]  # verbatim: the SDK JSON-encodes every value
    environment: Mapping[str, str]
    channels: tuple[Channel, ...]
    output_path: str  # S3OutputPath
    compress_output: bool  # OutputDataConfig.CompressionType GZIP (default) or NONE
    instance_type: str
    max_runtime_seconds: int  # AWS seconds; the runner scales them
    spot: bool
    max_wait_seconds: int | None  # AWS seconds, spot only
    checkpoint_s3_uri: str | None
    checkpoint_local_path: str
    tags: tuple[dict[str, str], ...]
    wire: Mapping[str, Any]  # the request as received, for DescribeTrainingJob

    @property
    def program(self) -> str:
        return str(decode_hp(self.hyperparameters[PROGRAM_HP]))

    @classmethod
    def parse(cls, p: Mapping[str, Any], catalog: Catalog) -> TrainingJobSpec:
        algorithm = p.get("AlgorithmSpecification") or {}
        image = algorithm.get("TrainingImage")
        if not image:
            raise ValidationError(
                "AlgorithmSpecification.TrainingImage is required: tideserve runs AWS framework "
                "training images (scikit-learn, XGBoost, PyTorch) in script mode; "
                "AlgorithmName (marketplace and built-in algorithms) is not supported.")
        framework = training_framework(image)
        for member in ("ContainerEntrypoint", "ContainerArguments"):
            if algorithm.get(member):
                raise ValidationError(
                    f"AlgorithmSpecification.{member} is not supported: tideserve runs the "
                    "framework image's training toolkit entry point (script mode).")
        mode = algorithm.get("TrainingInputMode", "File")
        hps = {str(k): str(v) for k, v in (p.get("HyperParameters") or {}).items()}
        if PROGRAM_HP not in hps:
            raise ValidationError(
                f"HyperParameters must name the script to run in '{PROGRAM_HP}' (and its code "
                f"in '{SUBMIT_DIRECTORY_HP}', a sourcedir.tar.gz in S3), as the SageMaker "
                "Python SDK's framework estimators set them: tideserve runs script mode only.")
        resources = p.get("ResourceConfig") or {}
        instance_type = resources.get("InstanceType")
        if not instance_type:
            raise ValidationError("ResourceConfig.InstanceType is required.")
        catalog.get(instance_type)  # names the catalog's types when unknown
        if int(resources.get("InstanceCount", 1)) != 1:
            raise ValidationError(
                f"ResourceConfig.InstanceCount {resources.get('InstanceCount')} is not "
                "supported: tideserve runs a training job on one instance.")
        output = p["OutputDataConfig"]
        _s3_uri(output["S3OutputPath"], "OutputDataConfig.S3OutputPath")
        spot = bool(p.get("EnableManagedSpotTraining", False))
        stopping = p.get("StoppingCondition") or {}
        max_runtime = int(stopping.get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_SECONDS))
        max_wait = _max_wait(stopping, spot, max_runtime)
        checkpoint = p.get("CheckpointConfig") or {}
        if checkpoint:
            _s3_uri(checkpoint["S3Uri"], "CheckpointConfig.S3Uri")
        return cls(
            name=p["TrainingJobName"],
            image=image,
            framework=framework,
            hyperparameters=hps,
            environment={str(k): str(v) for k, v in (p.get("Environment") or {}).items()},
            channels=_channels(p.get("InputDataConfig") or [], mode),
            output_path=output["S3OutputPath"],
            compress_output=output.get("CompressionType", "GZIP") != "NONE",
            instance_type=instance_type,
            max_runtime_seconds=max_runtime,
            spot=spot,
            max_wait_seconds=max_wait,
            checkpoint_s3_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath") or DEFAULT_CHECKPOINT_LOCAL_PATH,
            tags=tuple({"Key": t["Key"], "Value": t["Value"]} for t in p.get("Tags") or []),
            wire=dict(p),
        )


def _max_wait(stopping: Mapping[str, Any], spot: bool, max_runtime: int) -> int | None:
    if "MaxWaitTimeInSeconds" not in stopping:
        if spot:  # AWS's behaviour is UNCONFIRMED (spec §4.1): refuse rather than guess
            raise ValidationError(
                "StoppingCondition.MaxWaitTimeInSeconds is required when "
                "EnableManagedSpotTraining is set to true.")
        return None
    if not spot:
        raise ValidationError(
            "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining "
            "is set to true")
    max_wait = int(stopping["MaxWaitTimeInSeconds"])
    if max_wait < max_runtime:
        raise ValidationError(
            f"Invalid MaxWaitTimeInSeconds {max_wait}. It must be equal to or greater than "
            f"MaxRuntimeInSeconds ({max_runtime}).")
    return max_wait


def _channels(items: list[Mapping[str, Any]], job_mode: str) -> tuple[Channel, ...]:
    out: list[Channel] = []
    for item in items:
        name = item["ChannelName"]
        if any(c.name == name for c in out):
            raise ValidationError(f"Channel names must be unique: '{name}' is given twice.")
        mode = item.get("InputMode") or job_mode
        if mode not in ("File", "FastFile"):
            raise ValidationError(
                f"Channel '{name}': InputMode {mode} is not supported; tideserve copies "
                "channels to local files (File; FastFile is served the same way).")
        source = item["DataSource"].get("S3DataSource")
        if source is None:
            raise ValidationError(
                f"Channel '{name}': only S3DataSource is supported (not FileSystemDataSource).")
        if source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            raise ValidationError(
                f"Channel '{name}': S3DataType {source['S3DataType']} is not supported "
                "(S3Prefix or ManifestFile).")
        _s3_uri(source["S3Uri"], f"Channel '{name}' S3Uri")
        out.append(Channel(
            name=name, s3_uri=source["S3Uri"], s3_data_type=source["S3DataType"],
            distribution=source.get("S3DataDistributionType", "FullyReplicated"),
            content_type=item.get("ContentType"), input_mode=mode,
        ))
    return tuple(out)


def _s3_uri(uri: str, field: str) -> None:
    """An s3:// URI whose bucket the object store can hold (SageMaker's ValidationException,
    not S3's InvalidBucketName: the error is in this request)."""
    bucket, _ = parse_uri(uri)
    if not is_valid_bucket_name(bucket):
        raise ValidationError(f"{field} {uri!r} does not name a valid S3 bucket ('{bucket}').")


def decode_hp(value: str) -> Any:
    """A hyperparameter as the training toolkit reads it: JSON when it parses (the SDK
    json.dumps every value), else the raw string."""
    try:
        return json.loads(value)
    except ValueError:
        return value
