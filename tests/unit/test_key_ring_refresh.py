"""The worker's key ring (idp.keys.service.KeyRing) reads the database outside its lock: one
thread reloads while the others go on with the ring they have, unless the ``keys`` version
moved (a revocation), in which case none returns before a reload read the database under the
new version, so a revoked key is never used again once the version says so."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from joserfc.jwk import ECKey

from idp.keys.service import KeyRing

OLD, NEW = "old-key", "new-key"
KEYS = {kid: ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"})
        for kid in (OLD, NEW)}  # fmt: skip


def _row(kid: str, activate_at: int, revoked: bool = False) -> Any:
    return SimpleNamespace(
        kid=kid, alg="ES256", public_jwk=KEYS[kid].as_dict(private=False), created_at=1,
        activate_at=activate_at, retired_at=None, unpublish_at=None,
        revoked_at=2 if revoked else None,
    )  # fmt: skip


class _Versions:
    def __init__(self) -> None:
        self.value = "1"

    def current(self, family: str, fresh: bool = False) -> str:
        return self.value


class _SlowRing(KeyRing):
    """Reads rows from a list; a read can be held (``hold``) until released, so a test
    decides what the other threads see meanwhile."""

    def __init__(self) -> None:
        self.versions = _Versions()
        super().__init__(box=Any, cache_seconds=300.0, session=lambda: Any,  # type: ignore[arg-type,return-value]
                         versions=self.versions)  # type: ignore[arg-type]  # fmt: skip
        self.rows = [_row(OLD, 1), _row(NEW, 2)]
        self.reads = 0
        self.hold = False
        self.reading = threading.Event()
        self.release = threading.Event()

    def _rows(self) -> list[Any]:
        self.reads += 1
        rows = list(self.rows)  # what the database answered, before anything is released
        if self.hold:
            self.hold = False
            self.reading.set()
            assert self.release.wait(10)
        return rows

    def _load(self, row: Any) -> Any:
        return KEYS[row.kid]

    def kids(self) -> set[str]:
        return {k.kid for k in self._keys}


def _start(ring: _SlowRing, force: bool = False) -> threading.Thread:
    thread = threading.Thread(target=ring.refresh, kwargs={"force": force}, daemon=True)
    thread.start()
    return thread


def test_an_old_ring_is_reloaded_by_one_thread_while_the_others_use_it() -> None:
    ring = _SlowRing()
    ring.refresh()
    assert ring.kids() == {OLD, NEW} and ring.reads == 1
    ring._loaded_at = -1e18  # older than cache_seconds
    ring.hold = True
    reader = _start(ring)
    assert ring.reading.wait(10)
    others = [_start(ring) for _ in range(4)]
    for other in others:  # none waits for the read held in the database
        other.join(10)
        assert not other.is_alive()
    assert ring.reads == 2 and ring.signing_key() is not None  # still the current ring
    ring.release.set()
    reader.join(10)
    assert not reader.is_alive() and ring.reads == 2
    ring.refresh()
    assert ring.reads == 2  # fresh again: no read


def test_a_moved_version_waits_for_a_read_made_under_it() -> None:
    ring = _SlowRing()
    ring.refresh()
    ring._loaded_at = -1e18
    ring.hold = True
    reader = _start(ring)  # reads the rows as they were before the revocation
    assert ring.reading.wait(10)
    ring.rows = [_row(OLD, 1, revoked=True), _row(NEW, 2)]  # revoked and committed...
    ring.versions.value = "2"  # ...then the version moved
    waiter = _start(ring)
    ring.release.set()
    reader.join(10)
    waiter.join(10)
    assert not reader.is_alive() and not waiter.is_alive()
    assert ring.kids() == {NEW} and ring.reads == 3  # the waiter read again, under "2"
    assert ring.version == "2"
    ring.refresh()
    assert ring.reads == 3


def test_a_stale_read_installed_after_a_bump_leaves_the_ring_stale() -> None:
    """The version is taken before the read: a revocation committed during it is seen by
    the next call, which reads again rather than trusting the ring."""
    ring = _SlowRing()
    ring.refresh()
    ring._loaded_at = -1e18
    ring.hold = True
    reader = _start(ring)
    assert ring.reading.wait(10)
    ring.rows = [_row(OLD, 1, revoked=True), _row(NEW, 2)]
    ring.versions.value = "2"
    ring.release.set()
    reader.join(10)
    assert ring.kids() == {OLD, NEW} and ring.version == "1"  # what it read, under "1"
    ring.refresh()
    assert ring.kids() == {NEW} and ring.version == "2"


def test_a_forced_reload_reads_after_it_was_asked_for() -> None:
    """``changed`` (after this worker's own rotation or revocation) cannot be answered by a
    read that began before it, even under the same version (no versions: one process)."""
    ring = _SlowRing()
    ring.refresh()
    ring._loaded_at = -1e18
    ring.hold = True
    reader = _start(ring)
    assert ring.reading.wait(10)
    ring.rows = [_row(OLD, 1, revoked=True), _row(NEW, 2)]
    forced = _start(ring, force=True)
    ring.release.set()
    reader.join(10)
    forced.join(10)
    assert not forced.is_alive() and ring.kids() == {NEW} and ring.reads == 3


def test_a_failed_read_lets_the_next_call_read() -> None:
    ring = _SlowRing()
    ring.refresh()
    ring.versions.value = "2"
    ring.rows = None  # type: ignore[assignment]  # list(None): the database is down
    try:
        ring.refresh()
    except TypeError:
        pass
    else:
        raise AssertionError("the failed read was swallowed")
    assert ring.kids() == {OLD, NEW} and ring.version == "1"
    ring.rows = [_row(NEW, 2)]
    ring.refresh()
    assert ring.kids() == {NEW} and ring.version == "2"
