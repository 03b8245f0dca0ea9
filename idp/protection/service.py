"""Attack protection, Auth0's shields as the reference (SECURITY.md §1, §2.8).

- Brute force: failures are counted per identifier *and* IP; at ``BRUTE_FORCE_MAX_ATTEMPTS``
  that pair is blocked for ``BRUTE_FORCE_BLOCK_SECONDS``. A blocked login looks and takes as
  long as a wrong password, so the block is no oracle; the owner can still log in from
  another address (S-BF-06). An operator unblocks with ``idp users unblock``.
- Suspicious IP throttling: ``IP_THROTTLE_MAX_FAILURES`` failures from one IP, across accounts,
  within ``IP_THROTTLE_WINDOW_SECONDS`` → HTTP 429 with ``Retry-After``.

Operators change these at run time (``/api/v2/attack-protection/*``): the :class:`Policy` in
force is asked of ``live`` at each decision (the tenant settings, ``idp.tenant.protection``);
without it, the configuration's. Switched off or allow-listed, a shield neither counts nor
blocks; blocks already recorded run out on their own.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from idp.core.net import Network
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
    notify: bool = False  # the pair just reached max_attempts and the owner is told


@dataclass(frozen=True)
class LoginGate:
    """What the shields know of a login attempt before its hash, read at once."""

    ip_retry_after: int  # seconds of IP throttling left (0: not throttled)
    pair_blocked: bool  # this identifier is blocked for this IP
    pair_counted: bool  # failures of this pair are on record (a success resets them)


@dataclass(frozen=True)
class Policy:
    """The shields' settings at one moment."""

    max_attempts: int
    block_seconds: int
    ip_max_failures: int
    ip_window: int
    brute_force: bool = True  # count failures per identifier and IP
    block: bool = True  # Auth0's "block" shield: block the pair at max_attempts
    notify: bool = True  # Auth0's "user_notification": mail the owner an unblock link
    allowlist: tuple[Network, ...] = ()  # IPs brute-force protection leaves alone
    ip_throttling: bool = True
    ip_allowlist: tuple[Network, ...] = ()
    # pre-user-registration: sign-ups and reset mails per IP per window
    requests_per_ip: int = 50
    requests_window: int = 1800

    def trusts(self, ip: str, networks: tuple[Network, ...]) -> bool:
        if not networks:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in networks)


@dataclass
class Shields:
    store: CounterStore
    defaults: Policy
    live: Callable[[], Policy] | None = field(default=None, compare=False)

    @classmethod
    def from_config(
        cls, store: CounterStore, cfg: dict[str, Any], live: Callable[[], Policy] | None = None
    ) -> Shields:
        return cls(store, policy_from_config(cfg), live)

    def policy(self) -> Policy:
        return self.live() if self.live is not None else self.defaults

    def _counts_pair(self, p: Policy, ip: str) -> bool:
        return p.brute_force and not p.trusts(ip, p.allowlist)

    def _counts_ip(self, p: Policy, ip: str) -> bool:
        return p.ip_throttling and not p.trusts(ip, p.ip_allowlist)

    def ip_retry_after(self, ip: str) -> int:
        if not self._counts_ip(self.policy(), ip):
            return 0
        return self.store.blocked_for(_ip(ip))

    def gate(self, email: str, ip: str) -> LoginGate:
        """The IP throttle and the pair's block in one read (a login's hot path)."""
        p = self.policy()
        pair, by_ip = _pair(email, ip), _ip(ip)
        found = self.store.look([by_ip, pair])
        return LoginGate(found.get(by_ip, 0) if self._counts_ip(p, ip) else 0,
                         found.get(pair, 0) > 0 and self._counts_pair(p, ip),
                         pair in found)  # fmt: skip

    def is_blocked(self, email: str, ip: str) -> bool:
        if not self._counts_pair(self.policy(), ip):
            return False
        return self.store.blocked_for(_pair(email, ip)) > 0

    def on_failure(self, email: str, ip: str) -> Verdict:
        p, verdict = self.policy(), Verdict()
        if self._counts_pair(p, ip):
            failures = self.store.hit(_pair(email, ip), p.block_seconds)
            if failures >= p.max_attempts and p.block:
                self.store.block(_pair(email, ip), p.block_seconds)
                verdict.blocked_now = True
            verdict.notify = p.notify and failures == p.max_attempts
        if self._counts_ip(p, ip) and self.store.hit(_ip(ip), p.ip_window) >= p.ip_max_failures:
            self.store.block(_ip(ip), p.ip_window)
            verdict.throttled_now = True
        return verdict

    def on_success(self, email: str, ip: str, counted: bool = True) -> None:
        """Forget the pair's failures; ``counted=False`` (the gate saw none) skips the write."""
        if counted:
            self.store.reset(_pair(email, ip))

    def allow(self, kind: str, ip: str) -> bool:
        """Rate-limit a costly unauthenticated action (sign-up, reset mail) per IP, as Auth0's
        pre-registration throttling does (part of suspicious IP throttling)."""
        p = self.policy()
        if not self._counts_ip(p, ip):
            return True
        return self.store.hit(f"req:{kind}:{_h(ip)}", p.requests_window) <= p.requests_per_ip

    def client_auth_failed(self, client_id: str, ip: str) -> int:
        """Count a failed client authentication (OAuth 2.1 §2.4.1, TK-25); returns the seconds
        the client+IP pair is now blocked for (0 while under the threshold). Only failures
        touch the store, so successful token requests pay nothing."""
        key, p = f"cli:{_h(client_id)}:{_h(ip)}", self.defaults  # not the users' shield
        if self.store.hit(key, p.block_seconds) >= p.max_attempts * 5:
            self.store.block(key, p.block_seconds)
        return self.store.blocked_for(key)

    def unblock(self, email: str) -> int:
        return self.store.reset_prefix(account_prefix(email))


def policy_from_config(cfg: dict[str, Any]) -> Policy:
    return Policy(
        max_attempts=cfg["BRUTE_FORCE_MAX_ATTEMPTS"],
        block_seconds=cfg["BRUTE_FORCE_BLOCK_SECONDS"],
        ip_max_failures=cfg["IP_THROTTLE_MAX_FAILURES"],
        ip_window=cfg["IP_THROTTLE_WINDOW_SECONDS"],
        requests_per_ip=cfg["ACCOUNT_REQUESTS_PER_IP"],
        requests_window=cfg["ACCOUNT_REQUESTS_WINDOW_SECONDS"],
    )
