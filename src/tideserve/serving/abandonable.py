"""Work nobody waits for any more is not started.

A prediction waits in the instance's thread pool until a thread is free. If, by the time it
would start, the router has given up (its model timeout has passed) or the client connection
has closed, running it would only occupy a thread that live requests need: with two threads,
three calls retried once by a client after a timeout used to become four predictions, the
abandoned ones blocking the live ones. A prediction that has already started runs to its end
(Python cannot stop a thread), which bounds the waste to the predictions in progress.

Standard library only: instance.py imports this before numpy is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """The caller is gone: the work was not started."""


class AbandonableWork:
    def __init__(self, deadline: float, now: Callable[[], float]) -> None:
        self.deadline = deadline  # in the units of `now` (the event loop's clock)
        self.now = now
        self.disconnected = threading.Event()

    async def watch(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Mark the work abandoned when the ASGI server reports the client gone."""
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.disconnected.set()
                return

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """In the pool thread: start `fn` only if someone still waits for it."""
        if self.disconnected.is_set():
            raise Abandoned("the client disconnected before a thread was free")
        late = self.now() - self.deadline
        if late > 0:
            raise Abandoned(f"the router's timeout passed {late:.1f} s before a thread was free")
        return fn(*args)
