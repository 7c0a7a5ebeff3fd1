"""Delivering a budget alert to its subscribers. An SNS subscriber whose Address is an http(s)
URL gets the alert as an HTTP POST of a JSON body (tideserve has no SNS topics: the URL
stands for the endpoint an SNS HTTP subscription would reach); any other address (EMAIL, an
SNS topic ARN) is recorded only. Every alert is also recorded as an event in the store.
Posts run on a daemon thread with a 5 s timeout, so a slow subscriber never stalls the
server's period loop; a failed post is logged and dropped (AWS retries are not emulated)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0


def is_callback(subscriber: Mapping[str, str]) -> bool:
    return (subscriber.get("SubscriptionType") == "SNS"
            and subscriber.get("Address", "").startswith(("http://", "https://")))


def post(url: str, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()

    def send() -> None:
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # noqa: S310
                pass
        except Exception as exc:  # a subscriber's failure is its own
            log.warning("budget alert to %s failed: %s", url, exc)

    threading.Thread(target=send, name="budget-alert", daemon=True).start()
