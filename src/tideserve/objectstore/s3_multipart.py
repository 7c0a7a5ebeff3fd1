"""The multipart-upload operations of the S3 API (CreateMultipartUpload, UploadPart,
CompleteMultipartUpload, AbortMultipartUpload, ListParts), mixed into S3App."""

from __future__ import annotations

import asyncio

from tideserve.errors import ValidationError
from tideserve.objectstore import xml as s3xml
from tideserve.objectstore.body import ALGORITHMS, expectations_from
from tideserve.objectstore.multipart import MAX_PART_BYTES, Multipart, check_part_number
from tideserve.objectstore.s3_auth import S3Identity
from tideserve.objectstore.s3_http import (
    Base,
    Receive,
    S3Request,
    Send,
    checksum_headers,
    object_attributes,
    receive_body,
    respond,
    send_xml,
    small_body,
)
from tideserve.objectstore.store import ObjectStore


class MultipartHandlers:
    store: ObjectStore
    multipart: Multipart

    async def _CreateMultipartUpload(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        algorithm = req.headers.get("x-amz-checksum-algorithm", "").upper() or None
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise ValidationError(
                f"Checksum algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}.",
                code="InvalidRequest",
            )
        attrs = object_attributes(req.headers, {})
        upload = await asyncio.to_thread(
            self.multipart.create, req.bucket, req.key, attrs, algorithm
        )
        body = s3xml.render(
            "InitiateMultipartUploadResult",
            [("Bucket", upload.bucket), ("Key", upload.key), ("UploadId", upload.upload_id)],
        )
        extra = [("x-amz-checksum-algorithm", algorithm)] if algorithm else []
        await send_xml(send, base + extra, body)

    async def _UploadPart(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        number = check_part_number(_part_number(req.query.get("partNumber", "")))
        upload = await asyncio.to_thread(
            self.multipart.get, req.query["uploadId"], req.bucket, req.key
        )
        temp = await asyncio.to_thread(self.store.new_temp)
        try:
            expect = expectations_from(req.headers)
            body = await receive_body(receive, expect, ident, temp.write, MAX_PART_BYTES)
            await asyncio.to_thread(temp.finish)
            await asyncio.to_thread(
                self.multipart.put_part, upload, number, temp, body.md5_hex, body.checksums
            )
        except BaseException:
            temp.discard()
            raise
        headers = [*base, ("ETag", s3xml.quoted_etag(body.md5_hex))]
        await respond(send, 200, headers + checksum_headers(body.checksums))

    async def _CompleteMultipartUpload(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        upload = await asyncio.to_thread(
            self.multipart.get, req.query["uploadId"], req.bucket, req.key
        )
        parts = s3xml.completed_parts(await small_body(req, ident, receive))
        info = await asyncio.to_thread(self.multipart.complete, upload, parts)
        body = s3xml.render(
            "CompleteMultipartUploadResult",
            [
                ("Location", f"/{info.bucket}/{info.key}"),
                ("Bucket", info.bucket),
                ("Key", info.key),
                ("ETag", s3xml.quoted_etag(info.etag)),
            ],
        )
        await send_xml(send, base, body)

    async def _AbortMultipartUpload(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        upload = await asyncio.to_thread(
            self.multipart.get, req.query["uploadId"], req.bucket, req.key
        )
        await asyncio.to_thread(self.multipart.abort, upload)
        await respond(send, 204, base)

    async def _ListParts(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        upload = await asyncio.to_thread(
            self.multipart.get, req.query["uploadId"], req.bucket, req.key
        )
        marker = _part_number(req.query.get("part-number-marker", "0"))
        limit = min(_part_number(req.query.get("max-parts", "1000")), 1000)
        after = [
            p for p in await asyncio.to_thread(self.multipart.parts, upload) if p.number > marker
        ]
        page, truncated = after[:limit], len(after) > limit
        items: list[s3xml.Node] = [
            (
                "Part",
                [
                    ("PartNumber", p.number),
                    ("LastModified", s3xml.iso_time(p.last_modified)),
                    ("ETag", s3xml.quoted_etag(p.etag)),
                    ("Size", p.size),
                ],
            )
            for p in page
        ]
        head: list[s3xml.Node] = [
            ("Bucket", upload.bucket),
            ("Key", upload.key),
            ("UploadId", upload.upload_id),
            ("PartNumberMarker", marker),
            ("NextPartNumberMarker", page[-1].number if page else marker),
            ("MaxParts", limit),
            ("IsTruncated", truncated),
            ("StorageClass", "STANDARD"),
        ]
        await send_xml(send, base, s3xml.render("ListPartsResult", head + items))


def _part_number(value: str) -> int:
    if not value.isdigit():
        raise ValidationError(
            f"Part numbers and part limits are integers; got {value!r}.", code="InvalidArgument"
        )
    return int(value)
