"""GeoIP: where a client address is, from a MaxMind-format database (``IDP_GEOIP_DB``).

The answer is the shape of Auth0's ``event.request.geoip`` in snake_case: ISO 3166-1 alpha-2
``country_code``, ``country_name``, ``continent_code`` (AF, AN, AS, EU, NA, OC, SA), ISO 3166-2
``subdivision_code``, ``city_name``, WGS 84 ``latitude``/``longitude`` and the IANA
``time_zone``. A key the database has no value for is left out; an address the database does
not know, a private or loopback address, or no database at all give ``{}``.

GeoIP is a signal for policies, never an authentication factor: a lookup that fails for any
reason answers ``{}`` (and logs why) instead of failing the login. A database that is
configured but cannot be opened at start-up is an error, though: a typo in the path must not
silently switch every location-based policy off.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.errors
import maxminddb

log = logging.getLogger(__name__)

# Ranges that never locate anyone (RFC 6890 special-purpose blocks that are private, shared,
# loopback or link-local). Documentation ranges (RFC 5737, RFC 3849) are deliberately absent:
# examples and tests use them, and a real database simply does not contain them.
_UNLOCATABLE = tuple(
    ipaddress.ip_network(net)
    for net in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                "172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10")
)  # fmt: skip

# the "no database" warning, once per process (create_app may run many times)
_warned = threading.Event()
_warn_lock = threading.Lock()

RELOAD_CHECK_SECONDS = 5.0


class GeoIPError(ValueError):
    """``IDP_GEOIP_DB`` names something that is not a readable MaxMind database."""


def _locatable(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None  # "unknown" (no peer address) or garbage
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:192.0.2.1 is the IPv4 client behind a dual stack
    if addr.is_multicast or any(addr in net for net in _UNLOCATABLE):
        return None
    return addr


def _open(path: Path) -> geoip2.database.Reader:
    # In memory, not mmap: a file overwritten in place (``cp`` over it) under a memory map
    # crashes the process (SIGSEGV/SIGBUS), and GeoIP must never take logins down. A City
    # database costs its size (about 60 MB) per worker; a lookup stays in microseconds.
    try:
        return geoip2.database.Reader(str(path), mode=maxminddb.MODE_MEMORY)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoIPError(f"GEOIP_DB={path}: not a readable MaxMind database ({exc})") from None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class GeoIP:
    """A cached reader of one database file, reopened when the file is replaced (as
    ``geoipupdate`` does), checked at most every ``RELOAD_CHECK_SECONDS``."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._reader: geoip2.database.Reader | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if self.path is not None:
            self._stamp = _stamp(self.path)
            self._reader = _open(self.path)
            self._checked = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self._reader is not None

    def warn_if_unset(self) -> None:
        """The start-up warning: one per process, however many apps it creates."""
        if self.enabled:
            return
        with _warn_lock:
            if _warned.is_set():
                return
            _warned.set()
        log.warning(
            "GeoIP is off: IDP_GEOIP_DB is not set, so event.request.geoip is empty and "
            "location-based policies (e.g. require MFA by geography) see no location"
        )

    def lookup(self, ip: str | None) -> dict[str, Any]:
        """``event.request.geoip`` for ``ip``: the Auth0-shaped dict, or ``{}``."""
        reader = self._current()
        addr = _locatable(ip)
        if reader is None or addr is None:
            return {}
        try:
            kind = reader.metadata().database_type
            if "City" in kind:
                model: Any = reader.city(addr)
            elif "Enterprise" in kind:
                model = reader.enterprise(addr)
            else:
                model = reader.country(addr)
        except geoip2.errors.AddressNotFoundError:
            return {}
        except (ValueError, TypeError, maxminddb.InvalidDatabaseError) as exc:
            log.warning("GeoIP lookup failed: %s", exc)
            return {}
        return _shape(model)

    def _current(self) -> geoip2.database.Reader | None:
        if self.path is None:
            return None
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_SECONDS:
            return self._reader
        with self._lock:
            if now - self._checked < RELOAD_CHECK_SECONDS:
                return self._reader
            self._checked = now
            stamp = _stamp(self.path)
            if stamp is not None and stamp != self._stamp:
                try:
                    self._reader = _open(self.path)
                    self._stamp = stamp
                    log.info("GeoIP database %s reloaded", self.path)
                except GeoIPError as exc:
                    # half-written by an updater, say: keep answering from the old one
                    log.warning("%s; keeping the previous database", exc)
            # The old reader is not closed: a lookup in another thread may still use it.
        return self._reader


def _shape(model: Any) -> dict[str, Any]:
    city = getattr(model, "city", None)
    location = getattr(model, "location", None)
    subdivision = model.subdivisions.most_specific if hasattr(model, "subdivisions") else None
    values = {
        "country_code": model.country.iso_code,
        "country_name": model.country.name,
        "continent_code": model.continent.code,
        "subdivision_code": subdivision.iso_code if subdivision else None,
        "subdivision_name": subdivision.name if subdivision else None,
        "city_name": city.name if city else None,
        "latitude": location.latitude if location else None,
        "longitude": location.longitude if location else None,
        "time_zone": location.time_zone if location else None,
    }
    return {key: value for key, value in values.items() if value is not None}


def from_config(config: dict[str, Any]) -> GeoIP:
    return GeoIP(os.path.expanduser(config["GEOIP_DB"]) if config.get("GEOIP_DB") else None)
