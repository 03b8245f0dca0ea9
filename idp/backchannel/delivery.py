"""The back-channel logout delivery loop (OIDC Back-Channel Logout 1.0 §2.5): one background
thread per worker process, a database lease per logout, as the log streams' loop
(idp.logstreams.delivery) does.

* **Lease.** A worker sends a logout only while it holds the row's lease, taken by one
  conditional UPDATE (``... WHERE status = 'pending' AND retry_at <= now AND (leased_by IS NULL
  OR leased_until < now)``): of several workers or instances exactly one wins, so no two send
  it at once; one that dies stops holding it once ``leased_until`` passes (at least 3 x the
  POST's timeout), and another takes over.
* **At least once.** The row is marked ``delivered`` only after a 2xx answer (§2.8: 200, or
  the 204 some frameworks answer); a crash between the POST and that UPDATE sends it again,
  with the same ``jti`` (§2.6: receivers may drop one they have seen).
* **Failure.** An error or any other status waits ``BACKCHANNEL_LOGOUT_RETRY_SECONDS`` x
  2^(n-1) (at most ``BACKCHANNEL_LOGOUT_RETRY_MAX_SECONDS``) before the next try; after
  ``BACKCHANNEL_LOGOUT_MAX_ATTEMPTS`` the row is ``failed`` with its reason (never the
  response body, which the receiver controls). A client deleted, or its URI removed, meanwhile
  fails it at once.

The POST goes through :func:`idp.core.http.fetch` (the SSRF guard: the URI's own host only,
every address global unless in ``BACKCHANNEL_LOGOUT_ALLOW_NETWORKS``), with no database
transaction open while it is in flight. The token is signed at each attempt (fresh ``iat``).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask
from sqlalchemy import delete, or_, select, update

from idp.backchannel.models import BackchannelLogout
from idp.backchannel.token import logout_token
from idp.core import clock, http
from idp.core.crypto import random_token
from idp.extensions import db, services
from idp.oauth.models import Client

log = logging.getLogger(__name__)

EXTENSION = "idp.backchannel"
BATCH = 50  # rows looked at per pass
KEEP_SECONDS = 7 * 86400  # delivered and failed rows are kept this long (for operators)
SWEEP_SECONDS = 3600.0  # ... and swept at most this often per loop


@dataclass(frozen=True)
class Settings:
    networks: tuple[http.Network, ...]
    attempts: int
    retry: float
    retry_max: float
    poll: float
    lease: float
    timeout: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        timeout = float(cfg["BACKCHANNEL_LOGOUT_TIMEOUT_SECONDS"])
        return cls(
            networks=http.parse_networks(str(cfg["BACKCHANNEL_LOGOUT_ALLOW_NETWORKS"])),
            attempts=max(1, int(cfg["BACKCHANNEL_LOGOUT_MAX_ATTEMPTS"])),
            retry=float(cfg["BACKCHANNEL_LOGOUT_RETRY_SECONDS"]),
            retry_max=float(cfg["BACKCHANNEL_LOGOUT_RETRY_MAX_SECONDS"]),
            poll=float(cfg["BACKCHANNEL_LOGOUT_POLL_SECONDS"]),
            lease=3 * timeout + 5,
            timeout=timeout,
        )


def for_app(app: Flask) -> Delivery:
    """This app's loop (made on first use, started only by :meth:`Delivery.start`)."""
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = Delivery(app)
    assert isinstance(found, Delivery)
    return found


def running(app: Flask) -> Delivery | None:
    found = app.extensions.get(EXTENSION)
    return found if isinstance(found, Delivery) and found.running else None


class Delivery:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.settings = Settings.from_config(app.config)
        self.me = self._identity()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0

    @staticmethod
    def _identity() -> str:
        return f"{socket.gethostname()[:32]}:{os.getpid()}:{random_token(6)}"[:64]

    def start(self) -> None:
        """Start the loop in this process (idempotent; a forked worker gets its own)."""
        if self.running:
            return
        self.me = self._identity()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="backchannel-logout", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the POST in flight; the leases of this loop are given back."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        atexit.unregister(self.stop)
        thread.join(timeout)
        try:
            with self.app.app_context(), db.transaction() as s:
                s.execute(update(BackchannelLogout).where(BackchannelLogout.leased_by == self.me)
                          .values(leased_by=None, leased_until=0.0))  # fmt: skip
        except Exception:  # the leases then expire on their own
            log.warning("back-channel logout leases not released", exc_info=True)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = 0
            try:
                sent = self.run_once()
            except Exception:  # a database blip must not end the loop; it retries next poll
                log.exception("back-channel logout delivery failed; retrying")
            if sent:
                continue
            self._wake.wait(self.settings.poll)
            self._wake.clear()

    def sweep(self) -> int:
        """Delete delivered and failed logouts older than ``KEEP_SECONDS`` (the table would
        otherwise grow with every logout); pending ones are never swept."""
        cutoff = clock.now() - KEEP_SECONDS
        with self.app.app_context(), db.transaction() as s:
            result = s.execute(
                delete(BackchannelLogout).where(
                    BackchannelLogout.status.in_(("delivered", "failed")),
                    BackchannelLogout.created_at < cutoff,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def run_once(self) -> int:
        """Try every logout that is due; returns how many were delivered."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            self.sweep()
        with self.app.app_context():
            now = time.time()
            with db.transaction() as s:
                due = list(s.scalars(
                    select(BackchannelLogout.id)
                    .where(BackchannelLogout.status == "pending",
                           BackchannelLogout.retry_at <= now,
                           or_(BackchannelLogout.leased_by.is_(None),
                               BackchannelLogout.leased_until < now))
                    .order_by(BackchannelLogout.retry_at, BackchannelLogout.id).limit(BATCH)
                ))  # fmt: skip
            delivered = 0
            for row_id in due:
                if self._stop.is_set():
                    break
                if self.claim(row_id):
                    delivered += self.send(row_id)
            return delivered

    def claim(self, row_id: str) -> bool:
        """Take the lease (one conditional UPDATE): True for exactly one claimant."""
        now = time.time()
        with db.transaction() as s:
            result = s.execute(
                update(BackchannelLogout)
                .where(BackchannelLogout.id == row_id, BackchannelLogout.status == "pending",
                       BackchannelLogout.retry_at <= now,
                       or_(BackchannelLogout.leased_by.is_(None),
                           BackchannelLogout.leased_until < now))
                .values(leased_by=self.me, leased_until=now + self.settings.lease),
                execution_options={"synchronize_session": False},
            )  # fmt: skip
            return bool(getattr(result, "rowcount", 0) == 1)

    def send(self, row_id: str) -> int:
        """POST the Logout Token of a claimed row (§2.5); 1 when it was acknowledged. Each
        step is its own short transaction: SQLite has one writer, and none is held while the
        token is signed or the POST is in flight."""
        with db.transaction() as s:
            row = s.get(BackchannelLogout, row_id)
            client = s.get(Client, row.client_id) if row is not None else None
            if row is None or row.leased_by != self.me:
                return 0
            uri = client.backchannel_logout_uri if client is not None else None
            s.expunge(row)
        if not uri:
            self._finish(row_id, "failed", "the client or its backchannel_logout_uri is gone")
            return 0
        with self.app.app_context():  # its own db.session (key reload, client cache), closed
            svc = services()
            svc.keys.refresh()
            token = logout_token(svc, row)
        error = self._post(uri, token)
        if error is None:
            self._finish(row_id, "delivered", None)
            return 1
        self._fail(row_id, error)
        return 0

    def _post(self, uri: str, token: str) -> str | None:
        """None when the receiver acknowledged (2xx), else why not."""
        parts = urlsplit(uri)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            answer = http.fetch(
                "POST", uri, allowed_hosts=[f"{parts.hostname}:{port}"],
                allowed_networks=self.settings.networks,
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "User-Agent": "idp-backchannel-logout"},
                body=urlencode({"logout_token": token}).encode(),
                timeout=self.settings.timeout, max_body=16 * 1024,
            )  # fmt: skip
        except (http.FetchRefused, ValueError) as exc:
            return str(exc)
        if 200 <= answer.status < 300:
            return None
        return f"the endpoint answered HTTP {answer.status}"

    def _finish(self, row_id: str, status: str, reason: str | None) -> None:
        """Delivered (the last failure, if any, stays readable) or failed for good."""
        values: dict[str, Any] = {"status": status, "leased_by": None, "leased_until": 0.0}
        if status == "delivered":
            values["delivered_at"] = clock.now()
        if reason is not None:
            values["last_error"] = reason[:512]
        with db.transaction() as s:
            s.execute(
                update(BackchannelLogout)
                .where(BackchannelLogout.id == row_id, BackchannelLogout.leased_by == self.me)
                .values(**values),
                execution_options={"synchronize_session": False},
            )

    def _fail(self, row_id: str, reason: str) -> None:
        cfg = self.settings
        with db.transaction() as s:
            row = s.get(BackchannelLogout, row_id)
            if row is None or row.leased_by != self.me:
                return
            row.attempts += 1
            row.last_error = reason[:512]
            row.leased_by, row.leased_until = None, 0.0
            if row.attempts >= cfg.attempts:
                log.warning("back-channel logout %s to client %s failed %d times: %s", row.id,
                            row.client_id, row.attempts, reason)  # fmt: skip
                row.status = "failed"
            else:
                row.retry_at = time.time() + min(cfg.retry * 2 ** (row.attempts - 1),
                                                 cfg.retry_max)  # fmt: skip
