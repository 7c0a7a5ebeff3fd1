"""Which endpoints are asynchronous, with their AsyncInferenceConfig. The control plane binds
an endpoint when it is created (or updated) from a config that has one; the data plane asks
`get` on every request, so the table is mirrored in a dict; servers that share the database
reload it (`reload`, each leader poll) to see the endpoints another server's API bound."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from tideserve.asyncinf.config import AsyncConfig
from tideserve.asyncinf.queue import AsyncQueue
from tideserve.asyncinf.tables import async_endpoints as t
from tideserve.errors import ValidationError


class AsyncEndpoints:
    def __init__(self, engine: Engine, queue: AsyncQueue) -> None:
        self.engine = engine
        self.queue = queue
        self._lock = threading.Lock()
        self._configs: dict[str, AsyncConfig] = {}
        self._raw: dict[str, dict[str, Any]] = {}
        self._names: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        with self._lock, self.engine.connect() as conn:  # not between a _set's write and cache
            rows = list(conn.execute(select(t)))
            self._configs, self._raw, self._names = {}, {}, {}
            for row in rows:
                self._remember(row.name, row.config)

    def _remember(self, name: str, spec: dict[str, Any]) -> None:
        key = name.lower()
        self._configs[key] = AsyncConfig.from_spec(spec)
        self._raw[key] = spec
        self._names[key] = name

    def get(self, name: str) -> AsyncConfig | None:
        return self._configs.get(name.lower())

    def is_async(self, name: str) -> bool:
        return name.lower() in self._configs

    def describe(self, name: str) -> dict[str, Any] | None:
        """The AsyncInferenceConfig as it was given, for DescribeEndpoint."""
        return self._raw.get(name.lower())

    def names(self) -> list[str]:
        """The async endpoints' names as their creators spelled them (metric dimensions)."""
        return list(self._names.values())

    def created(self, name: str, spec: dict[str, Any] | None) -> None:
        """A new endpoint took this name: requests left by an older one of the same name are
        dropped, and it is async iff its config has an AsyncInferenceConfig."""
        self.queue.purge([name.lower()])
        self._set(name, spec)

    def updated(self, name: str, spec: dict[str, Any] | None) -> None:
        """UpdateEndpoint to a config with (possibly different) async settings; the queue is
        kept and served by the new fleet."""
        self._set(name, spec)

    def deleted(self, name: str) -> None:
        self._set(name, None)
        self.queue.purge([name.lower()])

    def _set(self, name: str, spec: dict[str, Any] | None) -> None:
        key = name.lower()
        with self._lock, self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.name_lower == key))
            if spec:
                conn.execute(insert(t).values(name_lower=key, name=name, config=spec))
                self._remember(name, spec)
            else:
                self._configs.pop(key, None)
                self._raw.pop(key, None)
                self._names.pop(key, None)

    def check_update(self, name: str, config_spec: dict[str, Any]) -> None:
        """UpdateEndpoint may change async settings but not turn a real-time endpoint into an
        async one or back: clients and queued requests depend on which it is."""
        wants = bool(config_spec.get("AsyncInferenceConfig"))
        if wants != self.is_async(name):
            kind = ("asynchronous", "real-time") if wants else ("real-time", "asynchronous")
            raise ValidationError(
                f"Endpoint {name} cannot be updated to a {kind[0]} endpoint configuration: it is "
                f"a {kind[1]} endpoint. Create a new endpoint instead."
            )
