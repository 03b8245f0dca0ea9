"""Tenant settings that operators change at run time through the management API, stored so
that every worker sees a change.

**Precedence**: a value stored in ``tenant_settings`` (one row per key, a JSON value, written
by the API) wins over the configuration (``idp.config``: defaults, ``config.toml``, ``IDP_*``
variables), which is each key's default; keys the configuration does not have take theirs from
:data:`DEFAULTS`. Only the keys of :data:`KEYS` can be stored.

**Cache**: a worker reads the whole table (a handful of rows, one SELECT) into an immutable
:class:`Snapshot` kept ``TENANT_SETTINGS_CACHE_SECONDS``, like the client cache. A write through
the API drops this worker's snapshot after its commit, so the change applies here at once,
and moves the ``tenant`` version (:mod:`idp.core.versions`), so other workers and instances
reload at their next version check (or when theirs expires). What is derived from the
settings (the pages' CSP, the shields' policy, the brand) is memoised on the snapshot, so it is
rebuilt only when a setting changed. The API itself reads the table uncached
(:meth:`TenantSettings.read`), so an ``ETag`` always describes what is stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from idp.core import clock
from idp.core.versions import TENANT, Versions
from idp.tenant.models import TenantSetting

log = logging.getLogger(__name__)
T = TypeVar("T")

# Keys whose default is a configuration setting of the same name (idp.config.SETTINGS).
FROM_CONFIG = (
    "BRAND_NAME", "BRAND_LOGO_URL", "BRAND_PRIMARY_COLOR", "SESSION_TTL",
    "BRUTE_FORCE_MAX_ATTEMPTS", "IP_THROTTLE_MAX_FAILURES", "IP_THROTTLE_WINDOW_SECONDS",
    "ACCOUNT_REQUESTS_PER_IP", "ACCOUNT_REQUESTS_WINDOW_SECONDS",
    "WEBAUTHN_ATTESTATION", "WEBAUTHN_AAGUID_ALLOWLIST",
)  # fmt: skip
# Keys that exist only here: their defaults keep idp's behaviour from before they existed.
DEFAULTS: dict[str, Any] = {
    "SUPPORT_EMAIL": "",
    "BRUTE_FORCE_ENABLED": True,
    "BRUTE_FORCE_SHIELDS": ["block", "user_notification"],
    "BRUTE_FORCE_ALLOWLIST": [],
    "IP_THROTTLE_ENABLED": True,
    "IP_THROTTLE_SHIELDS": ["block"],
    "IP_THROTTLE_ALLOWLIST": [],
    # one switch per idp factor kind (idp.mfa.factors); every factor is on by default
    **{f"MFA_FACTOR_{kind.upper()}": True
       for kind in ("totp", "webauthn", "push", "phone", "email", "recovery")},
}  # fmt: skip
KEYS = frozenset(FROM_CONFIG) | frozenset(DEFAULTS)


class Snapshot:
    """The tenant settings at one moment: ``snapshot[key]``; ``updated_at`` of stored keys."""

    def __init__(self, defaults: Mapping[str, Any], stored: Mapping[str, tuple[Any, int]]):
        values = dict(defaults)
        self.updated_at: dict[str, int] = {}
        for key, (value, updated_at) in stored.items():
            if key in values and _same_type(values[key], value):
                values[key] = value
                self.updated_at[key] = updated_at
            elif key in values:  # only the API writes rows, and it validates: a hand edit
                log.warning("tenant setting %s has a value of the wrong type; ignored", key)
        self._values = values
        canonical = json.dumps({k: values[k] for k in sorted(self.updated_at)}, sort_keys=True)
        self.version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        self._memo: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return list(value) if isinstance(value, list) else value  # never the shared list

    def derive(self, name: str, build: Callable[[Snapshot], T]) -> T:
        """``build(self)``, computed once per snapshot (a CSP, a parsed allowlist)."""
        with self._lock:
            if name not in self._memo:
                self._memo[name] = build(self)
            found: T = self._memo[name]
            return found


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


class TenantSettings:
    """The per-worker cache in front of ``tenant_settings`` (see the module docstring)."""

    def __init__(
        self, config: Mapping[str, Any], ttl: float, session: Callable[[], Session],
        versions: Versions | None = None,
    ) -> None:  # fmt: skip
        self.defaults = {**{k: config[k] for k in FROM_CONFIG}, **DEFAULTS}
        self._ttl = ttl
        self._session = session
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._versions = versions
        self._seen = ""

    def snapshot(self) -> Snapshot:
        snap, now = self._snapshot, time.monotonic()
        # read before the load: a write committed meanwhile moves it again (another reload)
        version = self._versions.current(TENANT) if self._versions is not None else ""
        if snap is not None and now - self._loaded_at < self._ttl and version == self._seen:
            return snap
        snap = self.read(self._session())
        with self._lock:
            self._snapshot, self._loaded_at, self._seen = snap, now, version
        return snap

    def get(self, key: str) -> Any:
        return self.snapshot()[key]

    def invalidate(self) -> None:
        """Drop this worker's snapshot (after a write committed): the next read reloads, here
        and, through the ``tenant`` version, in every other worker and instance."""
        with self._lock:
            self._snapshot = None
        if self._versions is not None:
            self._versions.bump(TENANT)

    def read(self, session: Session, lock: bool = False) -> Snapshot:
        """The stored settings now, uncached. ``lock``: serialise with other writers until the
        transaction ends (PostgreSQL: an advisory lock, as a row may not exist yet; SQLite's
        transactions already begin IMMEDIATE)."""
        if lock and session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(7418236)"))
        rows = session.execute(select(TenantSetting.key, TenantSetting.value,
                                      TenantSetting.updated_at)).all()  # fmt: skip
        return Snapshot(self.defaults, {r.key: (r.value, r.updated_at) for r in rows})

    def write(self, session: Session, values: Mapping[str, Any]) -> None:
        """Store ``values`` (keys of :data:`KEYS`, already validated) in the caller's
        transaction; the caller commits, then calls :meth:`invalidate`."""
        now = clock.now()
        for key, value in values.items():
            if key not in KEYS:
                raise KeyError(f"{key} is not a tenant setting")
            row = session.get(TenantSetting, key)
            if row is None:
                session.add(TenantSetting(key=key, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now
        session.flush()


def init_app(app: Flask, session: Callable[[], Session], versions: Versions | None = None) -> None:
    ttl = float(app.config.get("TENANT_SETTINGS_CACHE_SECONDS", 5.0))
    app.extensions["idp.tenant"] = TenantSettings(app.config, ttl, session, versions)


def tenant() -> TenantSettings:
    """This app's tenant settings (``init_app`` ran in ``create_app``)."""
    found: TenantSettings = current_app.extensions["idp.tenant"]
    return found


def setting(key: str) -> Any:
    """One setting's current value on this worker (API value > configuration default)."""
    return tenant().get(key)
