"""Waiting for a starting instance: it is ready when GET /ping answers 200 (the container
contract), and has failed when its process exits first or the start-up window passes."""

from __future__ import annotations

import asyncio

import aiohttp

from tideserve.fleet.base import InstanceHandle, InstanceProvider


class NotReady(Exception):
    """Why the instance never became ready, as the end of a sentence ("it exited with
    status 1. <last log line>")."""


async def wait_until_ready(
    provider: InstanceProvider,
    handle: InstanceHandle,
    http: aiohttp.ClientSession,
    timeout: float,
    max_delay: float = 0.5,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.02
    while loop.time() < deadline:
        code = provider.exit_code(handle)
        if code is not None:
            detail = provider.failure_detail(handle)
            raise NotReady(f"it exited with status {code}. {detail}".strip())
        try:
            async with http.get(handle.url + "/ping") as resp:
                if resp.status == 200:
                    return
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(delay)
        delay = min(max_delay, delay * 1.5)  # quick at first: a warm start takes ~1-2 s
    raise NotReady(f"it did not answer within {timeout:.0f} seconds.")
