"""Reuse of client-credentials tokens for a few seconds.

A machine client that asks for a token on every call gets the token it was just issued while
that token is younger than ``CC_TOKEN_REUSE_SECONDS`` (same client, audience and scope), with
``expires_in`` telling the truth about its remaining lifetime. Signing an RS256 token is most
of the cost of a token request, and an identical token carries identical rights, so this keeps
a misbehaving client from burning the server's CPU.

Each worker has its own map. A revocation touches a stamp file in the instance folder; every
worker on the machine checks the stamp's mtime (one ``stat``) before reusing and forgets its map
when it moved, so a revoked token is never handed out again by a worker of this machine. Other
machines of a multi-host deployment stop reusing it when their window ends.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from idp.core import clock

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ReusableToken:
    access_token: str
    issued_at: int
    expires_at: int


class TokenReuse:
    def __init__(self, window_seconds: int, stamp: Path) -> None:
        self.window = window_seconds
        self._stamp = stamp
        self._seen_stamp = self._stamp_mtime()
        self._tokens: dict[tuple[str, str, str], ReusableToken] = {}
        self._lock = threading.Lock()

    def _stamp_mtime(self) -> int:
        try:
            return os.stat(self._stamp).st_mtime_ns
        except OSError:
            return 0

    def get(self, key: tuple[str, str, str]) -> ReusableToken | None:
        if self.window <= 0:
            return None
        stamp = self._stamp_mtime()
        if stamp != self._seen_stamp:
            with self._lock:
                self._tokens.clear()
                self._seen_stamp = stamp
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

    def revoked(self) -> None:
        """An access token was revoked: forget every reusable token, here and in the other
        workers (through the stamp file)."""
        with self._lock:
            self._tokens.clear()
            try:
                self._stamp.touch()
                os.utime(self._stamp)
            except OSError:
                pass  # read-only instance folder: the window still bounds reuse
            self._seen_stamp = self._stamp_mtime()
