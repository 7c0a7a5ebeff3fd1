"""Archives are bounded: a small archive that expands past the cap is refused before anything
is written, a compressed stream that is no tar is refused as such, and what is unpacked is
the user's alone."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
from pathlib import Path

import pytest

from tideserve.errors import ValidationError
from tideserve.serving.archive import fetch_model_data


def _bomb(path: Path, size: int) -> Path:
    """A gzip'd tar of one file of `size` zero bytes: a few KB on disk."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("weights.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    return path


def test_an_archive_that_expands_past_the_cap_is_refused_and_leaves_nothing(tmp_path):
    archive = _bomb(tmp_path / "model.tar.gz", 2_000_000)
    assert archive.stat().st_size < 20_000
    models = tmp_path / "models"
    with pytest.raises(ValidationError, match="unpacks to 2000000 bytes, more than the "
                                              "1000000 bytes allowed per model"):
        fetch_model_data(str(archive), models / "m", None, max_bytes=1_000_000)
    assert list(models.iterdir()) == []


def test_an_archive_within_the_cap_unpacks(tmp_path):
    archive = _bomb(tmp_path / "model.tar.gz", 500_000)
    tree = fetch_model_data(str(archive), tmp_path / "m", None, max_bytes=1_000_000)
    assert (tree / "weights.bin").stat().st_size == 500_000


def test_a_directory_past_the_cap_is_refused(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big").write_bytes(bytes(3000))
    with pytest.raises(ValidationError, match="more than the 1000 bytes"):
        fetch_model_data(str(source), tmp_path / "m", None, max_bytes=1000)


@pytest.mark.parametrize("payload", [b"this is no tar " * 100, bytes(512) + b"junk" * 300],
                         ids=["text", "a zero block then junk"])
def test_a_gzip_stream_that_is_not_a_tar_is_refused(tmp_path, payload):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip.compress(payload))
    with pytest.raises(ValidationError, match="is not a tar archive"):
        fetch_model_data(str(archive), tmp_path / "m", None)


def test_unpacked_files_are_private_and_executables_stay_executable(tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, mode in (("code/inference.py", 0o644), ("serve", 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 1, mode
            tar.addfile(info, io.BytesIO(b"x"))
    tree = fetch_model_data(str(archive), tmp_path / "m", None)
    modes = {p.relative_to(tree).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [tree, *tree.rglob("*")]}
    assert modes == {".": 0o700, "code": 0o700, "code/inference.py": 0o600, "serve": 0o700}
