"""Attack protection, Auth0's shields as the reference (SECURITY.md §1, §2.8).

- Brute force: failures are counted per identifier *and* IP; at ``BRUTE_FORCE_MAX_ATTEMPTS``
  that pair is blocked for ``BRUTE_FORCE_BLOCK_SECONDS``. A blocked login looks and takes as
  long as a wrong password, so the block is no oracle; the owner can still log in from
  another address (S-BF-06). An operator unblocks with ``idp users unblock``.
- Suspicious IP throttling: ``IP_THROTTLE_MAX_FAILURES`` failures from one IP, across accounts,
  within ``IP_THROTTLE_WINDOW_SECONDS`` → HTTP 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from idp.identity.service import normalise_email
from idp.protection.stores import CounterStore


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def account_prefix(email: str) -> str:
    return f"uip:{_h(normalise_email(email))}:"


def _pair(email: str, ip: str) -> str:
    return account_prefix(email) + _h(ip)


def _ip(ip: str) -> str:
    return f"ip:{_h(ip)}"


@dataclass
class Verdict:
    blocked_now: bool = False
    throttled_now: bool = False


@dataclass(frozen=True)
class LoginGate:
    """What the shields know of a login attempt before its hash, read at once."""

    ip_retry_after: int  # seconds of IP throttling left (0: not throttled)
    pair_blocked: bool  # this identifier is blocked for this IP
    pair_counted: bool  # failures of this pair are on record (a success resets them)


@dataclass
class Shields:
    store: CounterStore
    max_attempts: int
    block_seconds: int
    ip_max_failures: int
    ip_window: int

    @classmethod
    def from_config(cls, store: CounterStore, cfg: dict[str, Any]) -> Shields:
        return cls(
            store,
            cfg["BRUTE_FORCE_MAX_ATTEMPTS"],
            cfg["BRUTE_FORCE_BLOCK_SECONDS"],
            cfg["IP_THROTTLE_MAX_FAILURES"],
            cfg["IP_THROTTLE_WINDOW_SECONDS"],
        )

    def ip_retry_after(self, ip: str) -> int:
        return self.store.blocked_for(_ip(ip))

    def gate(self, email: str, ip: str) -> LoginGate:
        """The IP throttle and the pair's block in one read (a login's hot path)."""
        pair, by_ip = _pair(email, ip), _ip(ip)
        found = self.store.look([by_ip, pair])
        return LoginGate(found.get(by_ip, 0), found.get(pair, 0) > 0, pair in found)

    def is_blocked(self, email: str, ip: str) -> bool:
        return self.store.blocked_for(_pair(email, ip)) > 0

    def on_failure(self, email: str, ip: str) -> Verdict:
        verdict = Verdict()
        if self.store.hit(_pair(email, ip), self.block_seconds) >= self.max_attempts:
            self.store.block(_pair(email, ip), self.block_seconds)
            verdict.blocked_now = True
        if self.store.hit(_ip(ip), self.ip_window) >= self.ip_max_failures:
            self.store.block(_ip(ip), self.ip_window)
            verdict.throttled_now = True
        return verdict

    def on_success(self, email: str, ip: str, counted: bool = True) -> None:
        """Forget the pair's failures; ``counted=False`` (the gate saw none) skips the write."""
        if counted:
            self.store.reset(_pair(email, ip))

    def allow(self, kind: str, ip: str, limit: int, window: int) -> bool:
        """Rate-limit a costly unauthenticated action (sign-up, reset mail) per IP, as Auth0's
        pre-registration throttling does."""
        return self.store.hit(f"req:{kind}:{_h(ip)}", window) <= limit

    def client_auth_failed(self, client_id: str, ip: str) -> int:
        """Count a failed client authentication (OAuth 2.1 §2.4.1, TK-25); returns the seconds
        the client+IP pair is now blocked for (0 while under the threshold). Only failures
        touch the store, so successful token requests pay nothing."""
        key = f"cli:{_h(client_id)}:{_h(ip)}"
        if self.store.hit(key, self.block_seconds) >= self.max_attempts * 5:
            self.store.block(key, self.block_seconds)
        return self.store.blocked_for(key)

    def unblock(self, email: str) -> int:
        return self.store.reset_prefix(account_prefix(email))
