"""What the SageMaker training toolkit gives a user's script, pure: the /opt/ml layout mapped
into the job's directory, the SM_* environment and the `--key value` arguments (spec §4.3-4.6).

A job runs as a local process, not in a container, so `/opt/ml` is a directory of ours
(`Layout.root`). Every SM_* path names the real directory; hyperparameter and Environment
values that are paths under /opt/ml (a script's `--checkpoint-dir /opt/ml/checkpoints`) are
rewritten to it, so the script reads and writes real directories. Two additions, named as
ours: SM_CHECKPOINT_DIR (the mapped CheckpointConfig.LocalPath, which a script in a container
would hard-code) and TIDESERVE_SPOT_INSTANCE_ACTION (the file that holds EC2's
`spot/instance-action` document once the instance is being reclaimed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tideserve.training.specs import SUBMIT_DIRECTORY_HP, TrainingJobSpec, decode_hp

CONTAINER_ROOT = PurePosixPath("/opt/ml")
CURRENT_HOST = "algo-1"
# Split off before the user's arguments (spec §4.6, the toolkit's params.py).
_RESERVED = frozenset({
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name",
    "default_user_module_name", "_tuning_objective_metric", "sagemaker_s3_output",
})


@dataclass(frozen=True)
class Layout:
    """/opt/ml of one attempt, at `root`."""

    root: Path

    def container(self, path: str) -> Path:
        """A container path as ours: /opt/ml/x -> root/x; another absolute path -> root/fs/..."""
        posix = PurePosixPath(path)
        if posix.is_relative_to(CONTAINER_ROOT):
            return self.root.joinpath(*posix.relative_to(CONTAINER_ROOT).parts)
        return self.root.joinpath("fs", *[p for p in posix.parts if p not in ("/", "..")])

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def spot_notice(self) -> Path:
        return self.root / "spot" / "instance-action"

    def make(self) -> None:
        for path in (self.model, self.code, self.config, self.output_data,
                     self.output / "intermediate", self.spot_notice.parent):
            path.mkdir(parents=True, exist_ok=True)


def user_hyperparameters(spec: TrainingJobSpec, layout: Layout) -> dict[str, Any]:
    """The decoded hyperparameters the script sees (SM_HPS), reserved ones removed."""
    return {k: _rewrite(decode_hp(v), layout) for k, v in spec.hyperparameters.items()
            if k not in _RESERVED and not k.startswith("sagemaker_")}


def framework_parameters(spec: TrainingJobSpec) -> dict[str, Any]:
    return {k: decode_hp(v) for k, v in spec.hyperparameters.items()
            if k.startswith("sagemaker_") and k not in _RESERVED}


def command_args(hps: Mapping[str, Any]) -> list[str]:
    """The toolkit's to_cmd_args: keys sorted, `--key` (`-k` for one letter), str() values,
    dicts as k=v,k2=v2. {"epochs": 10, "b": True} -> ['-b', 'True', '--epochs', '10']."""
    args: list[str] = []
    for key in sorted(hps):
        value = hps[key]
        args.append(f"-{key}" if len(key) == 1 else f"--{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def command(spec: TrainingJobSpec, layout: Layout) -> list[str]:
    """How the toolkit runs a PYTHON_PROGRAM entry point: `python <program> <args>`."""
    return [sys.executable, spec.program, *command_args(user_hyperparameters(spec, layout))]


def config_files(spec: TrainingJobSpec, layout: Layout) -> dict[str, Any]:
    """input/config/*.json, as the platform writes them."""
    files: dict[str, Any] = {
        "hyperparameters.json": dict(spec.hyperparameters),
        "inputdataconfig.json": {c.name: c.config() for c in spec.channels},
        "resourceconfig.json": _resource_config(spec),
    }
    if spec.checkpoint_s3_uri:
        files["checkpointconfig.json"] = {
            "S3Uri": spec.checkpoint_s3_uri,
            "LocalPath": str(layout.container(spec.checkpoint_local_path)),
        }
    return files


def environment(spec: TrainingJobSpec, layout: Layout, arn: str, region: str,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The script's whole environment: ours, then SM_*, then the job's Environment."""
    hps = user_hyperparameters(spec, layout)
    channels = sorted(c.name for c in spec.channels)
    values: dict[str, Any] = {
        "model_dir": str(layout.model),
        "channels": channels,
        "hps": hps,
        "user_args": command_args(hps),
        "user_entry_point": spec.program,
        "module_name": spec.program.removesuffix(".py"),
        "module_dir": str(decode_hp(spec.hyperparameters.get(SUBMIT_DIRECTORY_HP, '""')) or
                          layout.code),
        "framework_params": framework_parameters(spec),
        "log_level": decode_hp(spec.hyperparameters.get("sagemaker_container_log_level", "20")),
        "current_host": CURRENT_HOST,
        "hosts": [CURRENT_HOST],
        "network_interface_name": "eth0",
        "current_instance_type": spec.instance_type,
        "current_instance_group": "homogeneousCluster",
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": 0,
        "input_dir": str(layout.root / "input"),
        "input_config_dir": str(layout.config),
        "output_dir": str(layout.output),
        "output_data_dir": str(layout.output_data),
        "output_intermediate_dir": str(layout.output / "intermediate"),
        "resource_config": _resource_config(spec),
        "input_data_config": {c.name: c.config() for c in spec.channels},
    }
    env = dict(base if base is not None else os.environ)
    for key, value in values.items():
        env[f"SM_{key.upper()}"] = value if isinstance(value, str) else _json(value)
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(layout.channel(name))
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else _json(value)
    env["SM_TRAINING_ENV"] = _json({**values, "job_name": spec.name})
    env.update(
        CURRENT_HOST=CURRENT_HOST, TRAINING_JOB_NAME=spec.name, TRAINING_JOB_ARN=arn,
        SAGEMAKER_JOB_NAME=spec.name, SAGEMAKER_REGION=region, PYTHONUNBUFFERED="1",
        SM_CHECKPOINT_DIR=str(layout.container(spec.checkpoint_local_path)),
        SM_INPUT_DATA_CONFIG_FILE=str(layout.config / "inputdataconfig.json"),
        SM_INPUT_TRAINING_CONFIG_FILE=str(layout.config / "hyperparameters.json"),
        TIDESERVE_SPOT_INSTANCE_ACTION=str(layout.spot_notice),
    )
    if spec.checkpoint_s3_uri:  # the sklearn image presets it (spec §5.2)
        env["SM_CHECKPOINT_CONFIG_FILE"] = str(layout.config / "checkpointconfig.json")
    code = str(layout.code)
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update({k: str(_rewrite(v, layout)) for k, v in spec.environment.items()})
    return env


def _resource_config(spec: TrainingJobSpec) -> dict[str, Any]:
    return {
        "current_host": CURRENT_HOST, "current_instance_type": spec.instance_type,
        "current_group_name": "homogeneousCluster", "hosts": [CURRENT_HOST],
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": spec.instance_type, "hosts": [CURRENT_HOST]}],
        "network_interface_name": "eth0",
    }


def _rewrite(value: Any, layout: Layout) -> Any:
    if isinstance(value, str) and PurePosixPath(value).is_relative_to(CONTAINER_ROOT):
        return str(layout.container(value))
    return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write_config(spec: TrainingJobSpec, layout: Layout) -> None:
    for name, content in config_files(spec, layout).items():
        (layout.config / name).write_text(json.dumps(content, indent=1))
