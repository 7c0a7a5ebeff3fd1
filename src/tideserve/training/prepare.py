"""The blocking steps of an attempt, run in a worker thread: lay out /opt/ml, bring the code
and the channels in (Downloading), and pack and upload what the script left (Uploading).

Errors a user can fix (a missing prefix, a bad sourcedir.tar.gz) raise ValidationError with
the FailureReason the job ends with ("ClientError: ...").
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from tideserve.errors import TideserveError, ValidationError
from tideserve.serving.archive import extract_archive
from tideserve.serving.sourcedir import check_requirements
from tideserve.training.specs import SUBMIT_DIRECTORY_HP, TrainingJobSpec, decode_hp
from tideserve.training.toolkit import Layout, write_config
from tideserve.training.transfer import CheckpointSync, JobObjects, download_channel


def prepare(spec: TrainingJobSpec, layout: Layout, objects: JobObjects, role: str) -> None:
    """An empty /opt/ml (an interrupted attempt's model dir is not carried over), its config
    files, the code and every channel."""
    if layout.root.exists():
        shutil.rmtree(layout.root)
    layout.make()
    write_config(spec, layout)
    install_code(spec, layout, objects)
    for channel in spec.channels:
        download_channel(objects, channel.s3_uri, channel.s3_data_type,
                         layout.channel(channel.name), role)


def install_code(spec: TrainingJobSpec, layout: Layout, objects: JobObjects) -> None:
    """sagemaker_submit_directory into /opt/ml/code: a tarball in S3 (what the SDK uploads)
    unpacked with archive.py's safe extraction, or a local directory copied."""
    raw = spec.hyperparameters.get(SUBMIT_DIRECTORY_HP)
    submit = str(decode_hp(raw)) if raw else ""
    if not submit:
        raise ValidationError(
            f"ClientError: HyperParameters has no '{SUBMIT_DIRECTORY_HP}': tideserve needs the "
            "script's code (a sourcedir.tar.gz in S3, as the SageMaker Python SDK uploads it).")
    if submit.startswith("s3://"):
        with tempfile.TemporaryDirectory(dir=layout.root) as tmp:
            archive = Path(tmp) / "sourcedir.tar.gz"
            try:
                objects.download(submit, archive)
            except (TideserveError, FileNotFoundError, OSError) as exc:
                raise ValidationError(
                    f"ClientError: cannot download {SUBMIT_DIRECTORY_HP} {submit}: "
                    f"{getattr(exc, 'message', exc)}") from None
            staged = Path(tmp) / "code"
            staged.mkdir()
            try:
                extract_archive(archive, staged)
            except ValidationError as exc:
                raise ValidationError(f"ClientError: {submit}: {exc.message}") from None
            shutil.rmtree(layout.code)
            staged.rename(layout.code)
    else:
        local = Path(submit.removeprefix("file://"))
        if not local.is_dir():
            raise ValidationError(f"ClientError: {SUBMIT_DIRECTORY_HP} {submit} is not a "
                                  "directory or an s3:// sourcedir.tar.gz.")
        shutil.copytree(local, layout.code, dirs_exist_ok=True)
    if not (layout.code / spec.program).is_file():
        raise ValidationError(
            f"ClientError: the code in {submit} has no {spec.program} (sagemaker_program).")
    try:  # the toolkit pip-installs requirements.txt; we check them, as serving does
        check_requirements(layout.code)
    except ValidationError as exc:
        raise ValidationError(f"ClientError: {exc.message}") from None


def restore_checkpoints(spec: TrainingJobSpec, layout: Layout,
                        objects: JobObjects) -> CheckpointSync | None:
    if not spec.checkpoint_s3_uri:
        return None
    sync = CheckpointSync(objects, layout.container(spec.checkpoint_local_path),
                          spec.checkpoint_s3_uri)
    sync.restore()
    return sync


def upload_artifacts(spec: TrainingJobSpec, layout: Layout, objects: JobObjects) -> str:
    """/opt/ml/model as <S3OutputPath>/<job>/output/model.tar.gz (files at the archive root,
    so CreateModel serves it as is), /opt/ml/output/data as output.tar.gz when not empty;
    the model's URI. CompressionType NONE: the files themselves under .../output/model/."""
    base = f"{spec.output_path.rstrip('/')}/{spec.name}/output"
    if not spec.compress_output:
        for path in sorted(p for p in layout.model.rglob("*") if p.is_file()):
            objects.upload(path, f"{base}/model/{path.relative_to(layout.model).as_posix()}")
        return f"{base}/model/"
    with tempfile.TemporaryDirectory(dir=layout.root) as tmp:
        model = Path(tmp) / "model.tar.gz"
        _pack(layout.model, model)
        objects.upload(model, f"{base}/model.tar.gz")
        if any(layout.output_data.iterdir()):
            output = Path(tmp) / "output.tar.gz"
            _pack(layout.output_data, output)
            objects.upload(output, f"{base}/output.tar.gz")
    return f"{base}/model.tar.gz"


def _pack(directory: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.iterdir()):
            tar.add(path, arcname=path.name)
