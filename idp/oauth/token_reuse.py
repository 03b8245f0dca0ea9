"""Reuse of client-credentials tokens for a few seconds.

A machine client that asks for a token on every call gets the token it was just issued while
that token is younger than ``CC_TOKEN_REUSE_SECONDS`` (same client, audience and scope), with
``expires_in`` telling the truth about its remaining lifetime. Signing an RS256 token is most
of the cost of a token request, and an identical token carries identical rights, so this keeps
a misbehaving client from burning the server's CPU.

Each worker has its own map. A revocation moves the ``token_reuse`` version
(:mod:`idp.core.versions`: a stamp file in the instance folder on one machine, a Redis key
across instances); a worker reads it at every token request (one ``stat``, or one Redis ``GET``)
and forgets its map when it moved, so a revoked token is never handed out again, by any worker
of any instance, once its revocation has answered. (With Redis unreachable, the window alone
bounds reuse.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from idp.core import clock
from idp.core.versions import TOKEN_REUSE, Versions

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ReusableToken:
    access_token: str
    issued_at: int
    expires_at: int


class TokenReuse:
    """``keys_version``: the version of the worker's key ring. A token is reused only under the
    ring it was signed with: after a rotation elsewhere this worker may sign one more token
    with the old key before its ring reloads, and that token must not outlive the reload."""

    def __init__(
        self, window_seconds: int, versions: Versions, keys_version: Callable[[], str]
    ) -> None:
        self.window = window_seconds
        self._versions = versions
        self._keys_version = keys_version
        self._seen = versions.current(TOKEN_REUSE, fresh=True) if window_seconds > 0 else ""
        self._tokens: dict[tuple[str, str, str], tuple[ReusableToken, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> ReusableToken | None:
        if self.window <= 0:
            return None
        # asked on every request, not every interval: a revocation anywhere stops reuse at once,
        # and what this request puts next is tagged with the version it saw
        version = self._versions.current(TOKEN_REUSE, fresh=True)
        if version != self._seen:
            with self._lock:
                self._tokens.clear()
                self._seen = version
            return None
        found = self._tokens.get(key)
        if found is None:
            return None
        hit, ring = found
        if clock.now() - hit.issued_at >= self.window or ring != self._keys_version():
            return None
        return hit

    def put(self, key: tuple[str, str, str], token: ReusableToken) -> None:
        if self.window <= 0:
            return
        with self._lock:
            if len(self._tokens) >= _MAX_ENTRIES:
                self._tokens.clear()
            self._tokens[key] = (token, self._keys_version())

    def revoked(self) -> None:
        """An access token was revoked: forget every reusable token, here and in the other
        workers and instances (through the version)."""
        with self._lock:
            self._tokens.clear()
        self._versions.bump(TOKEN_REUSE)
        with self._lock:
            self._seen = self._versions.current(TOKEN_REUSE, fresh=True)
