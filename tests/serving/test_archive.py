"""ModelDataUrl -> model directory: every URL form, and hostile archives refused with nothing
written outside the destination."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tideserve.errors import NotFoundError, ValidationError
from tideserve.serving.archive import fetch_model_data


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


def _snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp/outside is where an escaping member would land; tmp/store the object store."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "store" / "bucket").mkdir(parents=True)
    return tmp_path


def test_tar_gz_unpacks_into_dest(sandbox: Path) -> None:
    archive = _tar(
        sandbox / "model.tar.gz",
        [
            _file("model.skops", b"weights"),
            _file("code/inference.py", b"# code"),
            _link("latest.skops", "model.skops"),
        ],
    )
    dest = fetch_model_data(str(archive), sandbox / "models" / "m1", sandbox / "store")
    assert (dest / "model.skops").read_bytes() == b"weights"
    assert (dest / "code" / "inference.py").read_bytes() == b"# code"
    assert (dest / "latest.skops").read_bytes() == b"weights"


def test_every_url_form_reaches_the_same_archive(sandbox: Path) -> None:
    stored = sandbox / "store" / "bucket" / "prefix" / "model.tar.gz"
    stored.parent.mkdir()
    _tar(stored, [_file("model.onnx", b"onnx")])
    urls = [
        "s3://bucket/prefix/model.tar.gz",
        f"file://{stored}",
        str(stored),
        f"memory://{stored}",  # any fsspec URL; a real S3 goes the same way
    ]
    import fsspec

    with fsspec.open(f"memory://{stored}", "wb") as f:
        f.write(stored.read_bytes())
    for i, url in enumerate(urls):
        dest = fetch_model_data(url, sandbox / "models" / str(i), sandbox / "store")
        assert (dest / "model.onnx").read_bytes() == b"onnx", url


def test_a_directory_is_copied_and_an_existing_empty_dest_is_filled(sandbox: Path) -> None:
    source = sandbox / "store" / "bucket" / "dir-model"
    (source / "code").mkdir(parents=True)
    (source / "model.json").write_text("{}")
    (source / "code" / "inference.py").write_text("pass")
    dest = sandbox / "models" / "m"
    dest.mkdir(parents=True)
    assert fetch_model_data("s3://bucket/dir-model", dest, sandbox / "store") == dest
    assert (dest / "model.json").read_text() == "{}"
    assert (dest / "code" / "inference.py").read_text() == "pass"


def test_a_finished_dest_is_reused(sandbox: Path) -> None:
    archive = _tar(sandbox / "a.tar.gz", [_file("model.skops", b"one")])
    dest = fetch_model_data(str(archive), sandbox / "models" / "m", None)
    _tar(archive, [_file("model.skops", b"two")])
    assert (fetch_model_data(str(archive), dest, None) / "model.skops").read_bytes() == b"one"


def test_a_missing_object_is_not_found(sandbox: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        fetch_model_data("s3://bucket/nope.tar.gz", sandbox / "m", sandbox / "store")
    assert not (sandbox / "m").exists()


HOSTILE = {
    "parent traversal": [_file("../evil", b"pwned")],
    "nested traversal": [_file("code/../../evil", b"pwned")],
    "absolute path": [_file("/tmp/tideserve-evil-absolute", b"pwned")],
    "symlink to /etc/passwd": [_link("model.skops", "/etc/passwd")],
    "relative symlink out": [_link("evil", "../outside/target")],
    "hardlink out": [_link("evil", "../outside/target", tarfile.LNKTYPE)],
    "hardlink absolute": [_link("evil", "/etc/passwd", tarfile.LNKTYPE)],
    "symlink dir then write through it": [
        _link("escape", "../outside"),
        _file("escape/evil", b"pwned"),
    ],
    "symlink chain": [
        _link("a", "."),
        _link("b", "a/../outside"),
        _file("b/evil", b"pwned"),
    ],
    "device file": [_link("dev", "", tarfile.CHRTYPE)],
    "fifo": [_link("pipe", "", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_write_nothing_outside(sandbox: Path, case: str) -> None:
    members = HOSTILE[case]
    archive = _tar(sandbox / "hostile.tar.gz", members)
    before = _snapshot(sandbox)
    dest = sandbox / "work" / "models" / "m"
    with pytest.raises(ValidationError) as caught:
        fetch_model_data(str(archive), dest, sandbox / "store")
    assert any(f"member {info.name!r}" in caught.value.message for info, _ in members)
    assert not dest.exists()
    after = _snapshot(sandbox)
    # Only the (empty) parent of dest may have appeared; no staging directory is left over.
    assert after - before <= {sandbox / "work", sandbox / "work" / "models"}
    assert not list((sandbox / "work" / "models").iterdir())
    assert not Path("/tmp/tideserve-evil-absolute").exists()


def test_a_directory_whose_symlink_leaves_it_is_refused(sandbox: Path) -> None:
    source = sandbox / "dir-model"
    source.mkdir()
    (source / "model.json").write_text("{}")
    (source / "leak").symlink_to("/etc/passwd")
    with pytest.raises(ValidationError, match="leak"):
        fetch_model_data(str(source), sandbox / "m", None)
    assert not (sandbox / "m").exists()


def test_a_corrupt_archive_is_a_validation_error(sandbox: Path) -> None:
    bad = sandbox / "model.tar.gz"
    good = _tar(sandbox / "good.tar.gz", [_file("model.skops", b"x" * 1000)])
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ValidationError):
        fetch_model_data(str(bad), sandbox / "m", None)
