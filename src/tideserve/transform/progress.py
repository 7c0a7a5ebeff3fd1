"""A running job's progress: records and input bytes done, live, for `tideserve jobs NAME`.

Served as `GET /tideserve/transform-jobs/<name>/progress`, signed with SigV4 for `sagemaker`
like every other call (a tideserve addition: AWS's DescribeTransformJob reports no progress,
and botocore drops members its model does not name, so a Describe field would never reach a
boto3 client). The answer is JSON:

    {"TransformJobName", "TransformJobStatus", "RecordsDone", "BytesDone", "BytesTotal",
     "ObjectsDone", "ObjectsFailed", "ObjectsTotal", "ElapsedSeconds"}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.types import Receive, Scope, Send

from tideserve.api import sigv4
from tideserve.api.errors import wire_error
from tideserve.api.ports import AccessPort
from tideserve.clock import Clock
from tideserve.errors import NotFoundError, TideserveError

PREFIX = "/tideserve/transform-jobs/"
SUFFIX = "/progress"


@dataclass
class Progress:
    objects_total: int = 0
    bytes_total: int = 0
    objects_done: int = 0
    objects_failed: int = 0
    records_done: int = 0
    bytes_done: int = 0  # input bytes read (as stored: compressed, for gzip)

    def view(self) -> dict[str, Any]:
        return {"RecordsDone": self.records_done, "BytesDone": self.bytes_done,
                "BytesTotal": self.bytes_total, "ObjectsDone": self.objects_done,
                "ObjectsFailed": self.objects_failed, "ObjectsTotal": self.objects_total}


class ProgressRoute:
    """The route as a mounted ASGI app (api/ports.py MountedApp)."""

    def __init__(self, lookup: Callable[[str], dict[str, Any]],
                 secret_for: Callable[[str], str | None], clock: Clock,
                 regions: Callable[[], Collection[str]]) -> None:
        self.lookup = lookup  # job name -> the answer; raises NotFoundError
        self.secret_for = secret_for
        self.clock = clock
        self.regions = regions
        # The progress is DescribeTransformJob's to give (trust.py sets the gate).
        self.access: AccessPort | None = None

    def handles(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return (scope.get("method") == "GET" and path.startswith(PREFIX)
                and path.endswith(SUFFIX))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            signed = sigv4.check_headers(
                "GET", raw_path, scope.get("query_string", b"").decode(), headers,
                self.secret_for, self.clock.now(), expected_service="sagemaker",
                regions=self.regions())
            identity = sigv4.verify_payload(signed, digest=sigv4.PayloadHash().hexdigest())
            name = unquote(scope["path"][len(PREFIX):-len(SUFFIX)])
            if self.access is not None:
                client = scope.get("client") or ("", 0)
                self.access.authorize(identity.access_key_id, "sagemaker",
                                      "DescribeTransformJob", {"TransformJobName": name},
                                      client[0])
            status, body = 200, self.lookup(name)
        except TideserveError as exc:
            wire = wire_error("sagemaker", exc)
            status = 404 if isinstance(exc, NotFoundError) else wire.status
            body = {"__type": wire.code, "message": wire.message}
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
