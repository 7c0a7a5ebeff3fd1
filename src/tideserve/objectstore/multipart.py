"""Multipart uploads: parts land under `<root>-uploads/<upload-id>/` as they arrive and are
concatenated into one object on CompleteMultipartUpload.

    <upload-id>/upload.json   bucket, key, initiated, and the object's future attributes
    <upload-id>/00001.part    part 1's bytes (renamed in whole, like objects)
    <upload-id>/00001.json    its ETag, size and checksums (written after the bytes)

The object's ETag is S3's: the MD5 of the concatenated binary part MD5s, then "-<part count>"
(two parts with MD5s m1, m2 -> hex(md5(m1 + m2)) + "-2"). Every part but the last must be at
least 5 MiB (EntityTooSmall otherwise), part numbers run 1-10000 and the completion list must
ascend (InvalidPartOrder). Assembly copies part files in the kernel where it can; it blocks,
so the HTTP layer runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, field

from tideserve.errors import NotFoundError, ValidationError
from tideserve.objectstore import files
from tideserve.objectstore.store import ObjectAttributes, ObjectInfo, ObjectStore
from tideserve.objectstore.xml import CompletedPart

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024**3
MAX_PART_NUMBER = 10_000
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_\-]{16,64}")


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float  # epoch seconds
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)
    checksum_algorithm: str | None = None  # from CreateMultipartUpload's x-amz-checksum-algorithm


@dataclass(frozen=True)
class Part:
    number: int
    etag: str  # unquoted hex MD5 of the part
    size: int  # bytes
    last_modified: float  # epoch seconds
    checksums: dict[str, str] = field(default_factory=dict)


class Multipart:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.root = store.uploads_root

    def create(
        self, bucket: str, key: str, attrs: ObjectAttributes, checksum_algorithm: str | None
    ) -> Upload:
        self.store.check_writable(bucket, key)
        upload = Upload(
            secrets.token_urlsafe(24),
            bucket,
            key,
            self.store.clock.now(),
            attrs,
            checksum_algorithm,
        )
        record = asdict(upload)
        files.write_json(self.root / upload.upload_id / "upload.json", record, self.store.tmp_root)
        return upload

    def get(self, upload_id: str, bucket: str, key: str) -> Upload:
        record = None
        if _UPLOAD_ID.fullmatch(upload_id):
            record = files.read_json(self.root / upload_id / "upload.json")
        if not record or record["bucket"] != bucket or record["key"] != key:
            raise NotFoundError(
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
                code="NoSuchUpload",
            )
        record["attributes"] = ObjectAttributes(**record["attributes"])
        return Upload(**record)

    def put_part(
        self,
        upload: Upload,
        number: int,
        temp: files.TempFile,
        etag: str,
        checksums: dict[str, str],
    ) -> Part:
        check_part_number(number)
        part = Part(number, etag, temp.size, self.store.clock.now(), checksums)
        folder = self.root / upload.upload_id
        files.publish(temp.path, folder / f"{number:05d}.part")
        files.write_json(folder / f"{number:05d}.json", asdict(part), self.store.tmp_root)
        return part

    def parts(self, upload: Upload) -> list[Part]:
        folder = self.root / upload.upload_id
        found = []
        for record_path in sorted(folder.glob("[0-9][0-9][0-9][0-9][0-9].json")):
            record = files.read_json(record_path)
            data = record_path.with_suffix(".part")
            if record and data.is_file() and data.stat().st_size == record["size"]:
                found.append(Part(**record))
        return found

    def complete(self, upload: Upload, requested: list[CompletedPart]) -> ObjectInfo:
        chosen = self._check_completion(upload, requested)
        temp = self.store.new_temp()
        try:
            for part in chosen:
                temp.append_file(self.root / upload.upload_id / f"{part.number:05d}.part")
            temp.finish()
        except BaseException:
            temp.discard()
            raise
        joined = b"".join(bytes.fromhex(p.etag) for p in chosen)
        etag = f"{hashlib.md5(joined).hexdigest()}-{len(chosen)}"
        attrs = ObjectAttributes(
            content_type=upload.attributes.content_type,
            metadata=upload.attributes.metadata,
            headers=upload.attributes.headers,
            parts=len(chosen),
        )
        info = self.store.commit(upload.bucket, upload.key, temp, etag, attrs)
        shutil.rmtree(self.root / upload.upload_id, ignore_errors=True)
        return info

    def abort(self, upload: Upload) -> None:
        shutil.rmtree(self.root / upload.upload_id, ignore_errors=True)

    def _check_completion(self, upload: Upload, requested: list[CompletedPart]) -> list[Part]:
        have = {p.number: p for p in self.parts(upload)}
        chosen: list[Part] = []
        for index, wanted in enumerate(requested):
            if index and wanted.part_number <= requested[index - 1].part_number:
                raise ValidationError(
                    "The list of parts was not in ascending order. The parts list must be "
                    "specified in order by part number.",
                    code="InvalidPartOrder",
                )
            part = have.get(wanted.part_number)
            if part is None or part.etag != wanted.etag:
                raise ValidationError(
                    f"One or more of the specified parts could not be found (part "
                    f"{wanted.part_number}). The part may not have been uploaded, or the "
                    "specified entity tag may not have matched the part's entity tag.",
                    code="InvalidPart",
                )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_BYTES:
                raise ValidationError(
                    f"Your proposed upload is smaller than the minimum allowed size: part "
                    f"{part.number} is {part.size} bytes; every part but the last must be at "
                    f"least {MIN_PART_BYTES} bytes.",
                    code="EntityTooSmall",
                )
        return chosen


def check_part_number(number: int) -> int:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise ValidationError(
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive; "
            f"got {number}.",
            code="InvalidArgument",
        )
    return number
