"""Reuse of client-credentials tokens for a few seconds.

A machine client that asks for a token on every call gets the token it was just issued while
that token is younger than ``CC_TOKEN_REUSE_SECONDS`` (same client, audience and scope), with
``expires_in`` telling the truth about its remaining lifetime. Signing an RS256 token is most
of the cost of a token request, and an identical token carries identical rights, so this keeps
a misbehaving client from burning the server's CPU. Each worker has its own map; a revocation
clears this worker's map, and other workers stop reusing within the window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from idp.core import clock

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ReusableToken:
    access_token: str
    issued_at: int
    expires_at: int


class TokenReuse:
    def __init__(self, window_seconds: int) -> None:
        self.window = window_seconds
        self._tokens: dict[tuple[str, str, str], ReusableToken] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> ReusableToken | None:
        if self.window <= 0:
            return None
        hit = self._tokens.get(key)
        if hit is None or clock.now() - hit.issued_at >= self.window:
            return None
        return hit

    def put(self, key: tuple[str, str, str], token: ReusableToken) -> None:
        if self.window <= 0:
            return
        with self._lock:
            if len(self._tokens) >= _MAX_ENTRIES:
                self._tokens.clear()
            self._tokens[key] = token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
