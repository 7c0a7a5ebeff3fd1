"""The SageMaker framework containers' script mode: `SAGEMAKER_SUBMIT_DIRECTORY` names the
user's code, `SAGEMAKER_PROGRAM` the module in it.

The SageMaker Python SDK's SKLearnModel and XGBoostModel upload `sourcedir.tar.gz` and set
`SAGEMAKER_SUBMIT_DIRECTORY=s3://bucket/prefix/sourcedir.tar.gz`; its PyTorchModel repacks the
code into the model archive and sets `/opt/ml/model/code`; local mode sets
`file:///path/to/source_dir`. As the AWS containers do, the submit directory wins over a
`code/` the model archive carries: its contents become the model directory's `code/` (where
handler.load_user_module imports SAGEMAKER_PROGRAM from), fetched like a ModelDataUrl (a
tarball unpacked by archive.py's safe extraction, a directory copied with its links checked).

`requirements.txt` in the code: the AWS containers pip-install it when the instance starts.
tideserve does not install anything at run time (an instance would reach out to a package
index and run setup code from the archive, and two instances could differ); it checks that
every listed requirement is installed in the environment that serves the model, at the
version asked for, and otherwise fails the model with the list of what is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from tideserve.errors import TideserveError, ValidationError

SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
# Where SageMaker mounts the model data in the container; a submit directory under it names a
# path inside our model directory.
CONTAINER_MODEL_DIR = PurePosixPath("/opt/ml/model")

# (url, dest) -> dest: materialise `url` into the empty directory `dest` (archive.py's
# fetch_model_data with the server's object-store settings bound).
Fetch = Callable[[str, Path], Path]


def install_submit_directory(submit_dir: str, model_dir: Path, fetch: Fetch) -> None:
    """Make `model_dir/code` the code `submit_dir` names, replacing what the archive had."""
    code = model_dir / "code"
    inside = _inside_model_dir(submit_dir, model_dir)
    if inside is not None:
        if inside == code:
            return  # PyTorchModel's repacked archive: the code is already in place
        if not inside.is_dir():
            raise ValidationError(
                f"{SUBMIT_DIRECTORY_ENV}={submit_dir!r}, but the model data has no directory "
                f"{inside.relative_to(model_dir)}."
            )
        submit_dir = str(inside)
    staging = Path(tempfile.mkdtemp(prefix=".code-", dir=model_dir))
    try:
        try:
            fetched = fetch(submit_dir, staging / "code")
        except TideserveError as exc:
            raise type(exc)(f"{SUBMIT_DIRECTORY_ENV}={submit_dir!r}: {exc.message}") from None
        if code.is_symlink() or code.is_file():
            code.unlink()
        elif code.exists():
            shutil.rmtree(code)
        fetched.rename(code)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _inside_model_dir(submit_dir: str, model_dir: Path) -> Path | None:
    path = PurePosixPath(submit_dir.removeprefix("file://"))
    if not path.is_relative_to(CONTAINER_MODEL_DIR):
        return None
    relative = path.relative_to(CONTAINER_MODEL_DIR)
    if ".." in relative.parts:
        raise ValidationError(f"{SUBMIT_DIRECTORY_ENV}={submit_dir!r} leaves the model directory.")
    return model_dir.joinpath(*relative.parts)


def check_requirements(code_dir: Path) -> None:
    """Fail, naming each one, when a requirement in `code_dir/requirements.txt` is not
    installed at a version it allows."""
    listing = code_dir / "requirements.txt"
    if not listing.is_file():
        return
    problems = [p for line in listing.read_text().splitlines() if (p := _problem(line))]
    if problems:
        raise ValidationError(
            "code/requirements.txt lists packages this server's Python does not have, and "
            "tideserve does not pip-install at run time; install them where tideserve runs: "
            + "; ".join(problems)
        )


def _problem(line: str) -> str | None:
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith("#") or text.startswith("-"):
        return None  # blank, a comment, or a pip option (--index-url, ...) with nothing to check
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return f"{text!r} is not a package requirement tideserve can check (a URL or a path?)"
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return f"{requirement.name} is not installed"
    if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
        wanted = requirement.specifier
        return f"{requirement.name} {installed} is installed, {text!r} asks for {wanted}"
    return None
