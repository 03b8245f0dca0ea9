"""The per-worker client cache (idp.oauth.clients.ClientDirectory) never stores a snapshot
loaded across an invalidation: a secret rotated or a client revoked while another thread was
loading it must not be served from the cache for a whole ttl afterwards."""

from __future__ import annotations

import threading
from typing import Any

from idp.oauth.clients import ClientDirectory


class _SlowDirectory(ClientDirectory):
    """Loads from a dict; the first load reads its value, then waits to be released."""

    def __init__(self) -> None:
        super().__init__(box=Any, ttl=300.0, session=lambda: Any)  # type: ignore[arg-type,return-value]
        self.rows = {"app": "before the change"}
        self.loading = threading.Event()
        self.release = threading.Event()
        self.first = True

    def _load(self, session: Any, client_id: str) -> Any:
        value = self.rows[client_id]
        if self.first:
            self.first = False
            self.loading.set()
            assert self.release.wait(10)
        return value


def test_a_snapshot_loaded_across_an_invalidation_is_not_cached() -> None:
    directory = _SlowDirectory()
    seen: list[Any] = []
    loader = threading.Thread(target=lambda: seen.append(directory.get("app")))
    loader.start()
    assert directory.loading.wait(10)
    directory.rows["app"] = "after the change"  # committed by another request...
    directory.invalidate()  # ...which then invalidates, while the load is in flight
    directory.release.set()
    loader.join(10)
    assert seen == ["before the change"]  # that request read before the change: fine
    assert directory.get("app") == "after the change"  # the next one must not get it again


def test_an_unchanged_client_is_served_from_the_cache() -> None:
    directory = _SlowDirectory()
    directory.first = False
    assert directory.get("app") == "before the change"
    directory.rows["app"] = "changed without an invalidation"
    assert directory.get("app") == "before the change"  # the ttl holds: the cache is used
