"""SAGEMAKER_SUBMIT_DIRECTORY: the SDK's sourcedir.tar.gz becomes the model's code/, over a
stale one; hostile tarballs are refused; requirements.txt is checked, never installed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tideserve.errors import NotFoundError, ValidationError
from tideserve.serving.archive import fetch_model_data
from tideserve.serving.sourcedir import check_requirements, install_submit_directory


def _tar(path: Path, files: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model archive that carries a stale code/inference.py, unpacked."""
    archive = _tar(tmp_path / "model.tar.gz", {"model.skops": b"w", "code/inference.py": b"old"})
    return fetch_model_data(str(archive), tmp_path / "models" / "m", tmp_path / "store")


def _fetch(tmp_path: Path):
    return lambda url, dest: fetch_model_data(url, dest, tmp_path / "store")


def test_s3_sourcedir_tarball_replaces_the_archives_code(tmp_path: Path, model_dir: Path):
    _tar(tmp_path / "store" / "bucket" / "job" / "sourcedir.tar.gz",
         {"inference.py": b"new", "helpers/util.py": b"u"})
    install_submit_directory("s3://bucket/job/sourcedir.tar.gz", model_dir, _fetch(tmp_path))
    assert (model_dir / "code" / "inference.py").read_bytes() == b"new"
    assert (model_dir / "code" / "helpers" / "util.py").read_bytes() == b"u"
    assert (model_dir / "model.skops").read_bytes() == b"w"
    assert sorted(p.name for p in model_dir.iterdir()) == ["code", "model.skops"]


def test_local_source_dir_as_file_url_is_copied(tmp_path: Path, model_dir: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "inference.py").write_text("local")
    install_submit_directory(source.as_uri(), model_dir, _fetch(tmp_path))
    assert (model_dir / "code" / "inference.py").read_text() == "local"


def test_opt_ml_model_code_is_the_repacked_archives_own_code(tmp_path: Path, model_dir: Path):
    install_submit_directory("/opt/ml/model/code", model_dir, _fetch(tmp_path))
    assert (model_dir / "code" / "inference.py").read_bytes() == b"old"
    with pytest.raises(ValidationError, match="no directory src"):
        install_submit_directory("/opt/ml/model/src", model_dir, _fetch(tmp_path))


def test_hostile_sourcedir_is_refused_and_the_old_code_kept(tmp_path: Path, model_dir: Path):
    _tar(tmp_path / "store" / "bucket" / "evil.tar.gz", {"../../escape.py": b"x"})
    with pytest.raises(ValidationError, match="SAGEMAKER_SUBMIT_DIRECTORY=.*'..' component"):
        install_submit_directory("s3://bucket/evil.tar.gz", model_dir, _fetch(tmp_path))
    _tar(tmp_path / "store" / "bucket" / "link.tar.gz", {}, link=("inference.py", "/etc/passwd"))
    with pytest.raises(ValidationError, match="absolute path"):
        install_submit_directory("s3://bucket/link.tar.gz", model_dir, _fetch(tmp_path))
    assert not list(tmp_path.rglob("escape.py"))
    assert (model_dir / "code" / "inference.py").read_bytes() == b"old"


def test_missing_submit_directory_names_the_variable(tmp_path: Path, model_dir: Path):
    with pytest.raises(NotFoundError, match="SAGEMAKER_SUBMIT_DIRECTORY='s3://bucket/none.tar.gz'"):
        install_submit_directory("s3://bucket/none.tar.gz", model_dir, _fetch(tmp_path))


def test_requirements_are_checked_not_installed(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "requirements.txt").write_text(
        "# what inference.py imports\n--extra-index-url https://example.invalid\n"
        "scikit-learn>=1.0\nnumpy ; python_version < '3'\n"
    )
    check_requirements(code)  # installed, or not applicable here
    (code / "requirements.txt").write_text(
        "scikit-learn<1.0\nno-such-package-tideserve==1.2\ngit+https://example.invalid/x.git\n"
    )
    with pytest.raises(ValidationError) as caught:
        check_requirements(code)
    message = caught.value.message
    assert "does not pip-install" in message
    assert "scikit-learn" in message and "asks for <1.0" in message
    assert "no-such-package-tideserve is not installed" in message
    assert "git+https://example.invalid/x.git" in message
