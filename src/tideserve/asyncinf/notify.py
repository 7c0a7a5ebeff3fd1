"""Async result notifications (spec §3.3): the InferenceResult event AWS publishes to the
config's SuccessTopic / ErrorTopic.

There is no SNS here. Each event is appended, one JSON object a line, to
`<state-dir>/notifications/<topic-name>.jsonl`; and if `<state-dir>/notification_endpoints.json`
maps the topic (by name or full ARN) to a URL, e.g. {"async-done": "http://127.0.0.1:9000/"},
the event is POSTed there inside an SNS HTTP-subscription envelope (Type "Notification",
Message = the event as a JSON string), which is what an SNS HTTP subscriber would receive.
Delivery is at least once: a request re-run after a crash may notify twice.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tideserve.asyncinf.queue import QueuedRequest

log = logging.getLogger("tideserve.asyncinf")

MAX_INCLUDED_RESPONSE_BYTES = 128 * 1024
CALLBACK_TIMEOUT_SECONDS = 5.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def inference_event(
    req: QueuedRequest, endpoint: str, region: str, now: float, *, ok: bool,
    content_type: str | None = None, failure_reason: str | None = None,
    response: bytes | None = None,
) -> dict[str, Any]:
    """The event for one finished request. `response` is included (UNCONFIRMED field name
    `responseBody`) only when asked for and at most 128 KB."""
    request: dict[str, Any] = {"endpointName": endpoint}
    if req.content_type:
        request["contentType"] = req.content_type
    if req.input_location:
        request["inputLocation"] = req.input_location
    event: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": iso(now),
        "receivedTime": iso(req.enqueued_at),
        "invocationStatus": "Completed" if ok else "Failed",
        "requestParameters": request,
        "responseParameters": (
            {"contentType": content_type or "application/octet-stream",
             "outputLocation": req.output_location}
            if ok else {"failureLocation": req.failure_location}
        ),
        "inferenceId": req.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if failure_reason is not None:
        event["failureReason"] = failure_reason
    if response is not None and len(response) <= MAX_INCLUDED_RESPONSE_BYTES:
        try:
            event["responseBody"] = {"content": response.decode("utf-8"), "encoding": "UTF-8"}
        except UnicodeDecodeError:
            event["responseBody"] = {"content": base64.b64encode(response).decode(),
                                     "encoding": "BASE64"}
    return event


def topic_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


class Notifier:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "notifications"
        self.endpoints_file = Path(state_dir) / "notification_endpoints.json"
        self._lock = threading.Lock()
        self._mapping: dict[str, str] = {}
        self._mapping_mtime: float | None = None

    def record(self, topic_arn: str, event: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"TopicArn": topic_arn, **event}, separators=(",", ":")) + "\n"
        with self._lock, open(self.dir / f"{topic_name(topic_arn)}.jsonl", "a") as out:
            out.write(line)

    def callback_url(self, topic_arn: str) -> str | None:
        mapping = self._endpoints()
        return mapping.get(topic_arn) or mapping.get(topic_name(topic_arn))

    def _endpoints(self) -> dict[str, str]:
        try:
            mtime = self.endpoints_file.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._mapping_mtime:
            try:
                loaded = json.loads(self.endpoints_file.read_text())
                self._mapping = {str(k): str(v) for k, v in loaded.items()}
            except (OSError, ValueError, AttributeError):
                log.warning("ignoring unreadable %s", self.endpoints_file)
                self._mapping = {}
            self._mapping_mtime = mtime
        return self._mapping

    async def publish(self, session: aiohttp.ClientSession, topic_arn: str,
                      event: dict[str, Any], now: float) -> bool:
        """Record the event and deliver it to the topic's URL, if one is mapped. False when
        the delivery failed (NotificationFailures)."""
        self.record(topic_arn, event)
        url = self.callback_url(topic_arn)
        if url is None:
            return True
        message_id = str(uuid.uuid4())
        envelope = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic_arn,
                    "Message": json.dumps(event), "Timestamp": iso(now), "SignatureVersion": "1"}
        headers = {"Content-Type": "text/plain; charset=UTF-8",
                   "x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": message_id,
                   "x-amz-sns-topic-arn": topic_arn}
        try:
            async with session.post(url, data=json.dumps(envelope).encode(), headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_SECONDS)
                                    ) as resp:
                await resp.read()
                return resp.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("notification to %s failed: %s", url, exc)
            return False
