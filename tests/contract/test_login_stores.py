"""The login's stores keep the promises of ``idp.stores.contracts``, every implementation, on
SQLite and (when ``IDP_TEST_DATABASE_URL`` names one) PostgreSQL.

Each test holds a store to one promise. Races use two real sessions: the first changes a row
and keeps its transaction open, the second goes at the same row from a thread, and the first
commits only once the second is waiting for it (PostgreSQL reports the wait; SQLite's BEGIN
IMMEDIATE cannot be observed, so there the second is given a moment to start).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from idp.audit.models import LogEvent
from idp.core.crypto import random_token
from idp.extensions import db
from idp.flows.models import Interaction, LoginSession
from idp.identity.models import User
from idp.mfa.models import Factor
from idp.oauth.models import AccessTokenRecord, AuthorizationCode
from idp.protection.models import ProtectionCounter
from idp.stores import STORES, Stores
from idp.stores.sql import sql_stores
from tests.conftest import LiveServer

T = TypeVar("T")
U = TypeVar("U")

IMPLEMENTATIONS: dict[str, Callable[[], Stores]] = {"sql": sql_stores}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def stores(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[Stores]:
    with live.app.app_context():
        yield IMPLEMENTATIONS[request.param]()
        db.session.rollback()


def test_the_app_runs_on_the_stores_this_suite_holds_to_the_contract() -> None:
    built = sql_stores()
    for field in dataclasses.fields(Stores):
        assert type(getattr(STORES, field.name)) is type(getattr(built, field.name))


# --- helpers ---------------------------------------------------------------------------------


def fresh(model: type[T], pk: Any) -> T | None:
    """The row as the ORM reads it in a session of its own (no identity map in common)."""
    with db.transaction() as other:
        row = other.get(model, pk)
        if row is not None:
            other.expunge(row)
        return row


def columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


def committed_user(**extra: Any) -> User:
    user = User(
        id="usr_" + random_token(8),
        # letters and digits only: the wildcard probes below change the last character
        email=f"u{secrets.token_hex(6)}@example.test",
        created_at=1,
        updated_at=1,
        **extra,
    )
    db.session.add(user)
    db.session.commit()
    return user


def new_interaction(**extra: Any) -> Interaction:
    values: dict[str, Any] = {
        "uid": random_token(12),
        "client_id": "client",
        "browser_hash": random_token(16),
        "created_at": 100,
        "expires_at": 700,
        "state": {"v": 1, "request": {"scope": "openid", "nonce": None}, "amr": ["pwd"]},
    }
    return Interaction(**(values | extra))


def new_login_session(user_id: str, **extra: Any) -> LoginSession:
    values: dict[str, Any] = {
        "id_hash": random_token(24),
        "sid": random_token(12),
        "user_id": user_id,
        "auth_time": 100,
        "created_at": 100,
        "expires_at": 1000,
    }
    return LoginSession(**(values | extra))


def new_code(**extra: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "code_hash": random_token(24),
        "grant_id": "grt_" + random_token(8),
        "client_id": "client",
        "user_id": "usr_x",
        "redirect_uri": "https://rp.test/cb",
        "scope": "openid offline_access",
        "audience": None,
        "nonce": "n-1",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
        "auth_time": 100,
        "amr": ["pwd", "otp"],
        "acr": None,
        "sid": "sid-1",
        "include_auth_time": True,
        "action_effects": {"id": {"https://x.test/role": "admin"}},
        "created_at": 100,
        "expires_at": 160,
    }
    return AuthorizationCode(**(values | extra))


def new_access_token(**extra: Any) -> AccessTokenRecord:
    values: dict[str, Any] = {
        "jti": random_token(12),
        "grant_id": "grt_" + random_token(8),
        "client_id": "client",
        "user_id": "usr_x",
        "expires_at": 1000,
    }
    return AccessTokenRecord(**(values | extra))


def race(first: Callable[[Session], T], second: Callable[[Session], U]) -> tuple[T, U]:
    """``first`` in one session; then, while its transaction is open, ``second`` in another
    (in a thread), which has to wait for it; then the first commits, then the second. The
    test's own session must hold no transaction (on SQLite it would hold the write lock)."""
    engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    outcome: dict[str, Any] = {}
    waited = False
    with (
        Session(engine, expire_on_commit=False) as one,
        Session(engine, expire_on_commit=False) as two,
    ):
        pid = two.execute(text("SELECT pg_backend_pid()")).scalar_one() if postgres else None
        outcome["first"] = first(one)

        def run_second() -> None:
            try:
                outcome["second"] = second(two)
                two.commit()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run_second, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + (10 if postgres else 0.3)
            while thread.is_alive() and time.monotonic() < deadline and not waited:
                waited = postgres and _waits_for_a_lock(pid)
                time.sleep(0.01)
        finally:
            one.commit()
            thread.join(30)
    assert not thread.is_alive(), "the second session is still running"
    if "error" in outcome:
        raise outcome["error"]
    # Not waiting would mean the second went at the row while the first's change was open.
    assert waited or not postgres, "the second session never waited for the first"
    return outcome["first"], outcome["second"]


def _waits_for_a_lock(pid: Any) -> bool:
    with db.engine.connect() as conn:
        wait = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return wait == "Lock"


# --- inserts: every store that writes new rows -----------------------------------------------

INSERTS: dict[str, Callable[[Stores, Session, str], Any]] = {
    "interactions": lambda s, session, _: _insert(
        s.interactions.insert, session, new_interaction()
    ),
    "login_sessions": lambda s, session, user_id: _insert(
        s.login_sessions.insert, session, new_login_session(user_id)
    ),
    "codes": lambda s, session, _: _insert(s.codes.insert, session, new_code()),
    "access_tokens": lambda s, session, _: _insert(
        s.access_tokens.insert, session, new_access_token()
    ),
}


def _insert(insert: Callable[[Session, T], None], session: Session, row: T) -> T:
    insert(session, row)
    return row


@pytest.mark.parametrize("kind", sorted(INSERTS))
def test_an_inserted_row_is_persistent_and_committed_as_written(stores: Stores, kind: str) -> None:
    user = committed_user()
    row = INSERTS[kind](stores, db.session, user.id)
    key = inspect(row).identity
    assert row in db.session and db.session.get(type(row), key) is row
    assert not db.session.new and not db.session.dirty  # written, nothing left to flush
    db.session.commit()
    assert columns(fresh(type(row), key)) == columns(row)


@pytest.mark.parametrize("kind", sorted(INSERTS))
def test_a_later_change_to_an_inserted_row_is_flushed_by_the_orm(stores: Stores, kind: str) -> None:
    user = committed_user()
    row = INSERTS[kind](stores, db.session, user.id)
    row.expires_at = 4242
    db.session.commit()
    stored = fresh(type(row), inspect(row).identity)
    assert stored is not None and stored.expires_at == 4242


@pytest.mark.parametrize("kind", sorted(INSERTS))
def test_an_insert_rolled_back_leaves_no_row_and_leaves_the_session(
    stores: Stores, kind: str
) -> None:
    user = committed_user()
    row = INSERTS[kind](stores, db.session, user.id)
    key = inspect(row).identity
    db.session.rollback()
    assert row not in db.session
    assert fresh(type(row), key) is None


# --- interactions ----------------------------------------------------------------------------


def test_get_gives_the_inserted_interaction_itself(stores: Stores) -> None:
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    assert stores.interactions.get(db.session, row.uid) is row


def test_get_reads_an_interaction_back_typed_and_identity_mapped(stores: Stores) -> None:
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    db.session.commit()
    db.session.expunge_all()
    loaded = stores.interactions.get(db.session, row.uid)
    assert loaded is not None and loaded is not row
    assert columns(loaded) == columns(row)  # the JSON state decoded, None kept
    assert stores.interactions.get(db.session, row.uid) is loaded
    assert db.session.get(Interaction, row.uid) is loaded


def test_get_gives_an_expired_interaction_too(stores: Stores) -> None:
    row = new_interaction(created_at=1, expires_at=2)
    stores.interactions.insert(db.session, row)
    db.session.commit()
    db.session.expunge_all()
    loaded = stores.interactions.get(db.session, row.uid)
    assert loaded is not None and loaded.expires_at == 2


def test_a_missing_or_deleted_interaction_is_none(stores: Stores) -> None:
    assert stores.interactions.get(db.session, "no-such-uid") is None
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    db.session.commit()
    stores.interactions.delete(db.session, row)
    assert row not in db.session
    assert stores.interactions.get(db.session, row.uid) is None
    db.session.commit()
    assert fresh(Interaction, row.uid) is None


def test_lock_reads_the_interaction_as_committed_and_none_once_deleted(stores: Stores) -> None:
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    db.session.commit()
    with db.transaction() as other:  # another request changes it meanwhile
        theirs = other.get(Interaction, row.uid)
        assert theirs is not None
        theirs.state = {"changed": True}
    locked = stores.interactions.lock(db.session, row.uid)
    assert locked is row and locked.state == {"changed": True}  # the database's, not ours
    db.session.commit()
    stores.interactions.delete(db.session, row)
    db.session.commit()
    assert stores.interactions.lock(db.session, row.uid) is None
    assert stores.interactions.lock(db.session, "no-such-uid") is None


def test_two_sessions_locking_an_interaction_take_turns(stores: Stores) -> None:
    """The second waits for the first's commit and then reads what it wrote (PostgreSQL's
    row lock; SQLite's BEGIN IMMEDIATE). A deleted row is then None, not an error."""
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    db.session.commit()

    def change(session: Session) -> str:
        mine = stores.interactions.lock(session, row.uid)
        assert mine is not None
        mine.state = {"by": "first"}
        session.flush()
        return mine.uid

    def read(session: Session) -> Any:
        mine = stores.interactions.lock(session, row.uid)
        return mine.state if mine is not None else None

    assert race(change, read) == (row.uid, {"by": "first"})

    def delete(session: Session) -> None:
        mine = stores.interactions.lock(session, row.uid)
        assert mine is not None
        stores.interactions.delete(session, mine)

    assert race(delete, read) == (None, None)


def test_delete_in_a_transaction_rolled_back_keeps_the_interaction(stores: Stores) -> None:
    row = new_interaction()
    stores.interactions.insert(db.session, row)
    db.session.commit()
    stores.interactions.delete(db.session, row)
    db.session.rollback()
    assert fresh(Interaction, row.uid) is not None


# --- login sessions --------------------------------------------------------------------------


def test_a_login_session_is_read_back_by_its_hash_with_defaults_applied(stores: Stores) -> None:
    user = committed_user()
    row = new_login_session(user.id)
    stores.login_sessions.insert(db.session, row)
    assert row.amr == []  # the column's default, as a flush would apply it
    assert stores.login_sessions.get(db.session, row.id_hash) is row
    db.session.commit()
    db.session.expunge_all()
    loaded = stores.login_sessions.get(db.session, row.id_hash)
    assert loaded is not None and columns(loaded) == columns(row)
    assert db.session.get(LoginSession, row.id_hash) is loaded


def test_an_ended_login_session_is_still_read_and_a_missing_one_is_none(stores: Stores) -> None:
    user = committed_user()
    row = new_login_session(user.id, ended_at=150, amr=["pwd"])
    stores.login_sessions.insert(db.session, row)
    db.session.commit()
    db.session.expunge_all()
    loaded = stores.login_sessions.get(db.session, row.id_hash)
    assert loaded is not None and loaded.ended_at == 150 and loaded.amr == ["pwd"]
    assert stores.login_sessions.get(db.session, "0" * 64) is None


# --- codes -----------------------------------------------------------------------------------


def test_a_code_is_claimed_once_and_comes_back_marked_used(stores: Stores) -> None:
    code = new_code()
    stores.codes.insert(db.session, code)
    db.session.commit()
    before = columns(code)
    claimed = stores.codes.claim(db.session, code.code_hash, "client", 120)
    assert claimed is code and columns(code) == before | {"used_at": 120}
    assert stores.codes.claim(db.session, code.code_hash, "client", 121) is None
    db.session.commit()
    stored = fresh(AuthorizationCode, code.code_hash)
    assert stored is not None and stored.used_at == 120


def test_a_claim_read_from_the_database_is_typed_and_identity_mapped(stores: Stores) -> None:
    code = new_code()
    stores.codes.insert(db.session, code)
    db.session.commit()
    written = columns(new_code(code_hash=code.code_hash, grant_id=code.grant_id))
    db.session.expunge_all()
    claimed = stores.codes.claim(db.session, code.code_hash, "client", 120)
    assert claimed is not None and claimed is not code
    assert columns(claimed) == written | {"used_at": 120}
    assert db.session.get(AuthorizationCode, code.code_hash) is claimed


def test_a_claim_by_another_client_after_expiry_or_of_no_code_changes_nothing(
    stores: Stores,
) -> None:
    code = new_code(expires_at=160)
    stores.codes.insert(db.session, code)
    db.session.commit()
    assert stores.codes.claim(db.session, "0" * 64, "client", 120) is None
    assert stores.codes.claim(db.session, code.code_hash, "other-client", 120) is None
    assert stores.codes.claim(db.session, code.code_hash, "client", 160) is None  # expires_at
    assert stores.codes.claim(db.session, code.code_hash, "client", 500) is None
    db.session.commit()
    stored = fresh(AuthorizationCode, code.code_hash)
    assert stored is not None and stored.used_at is None
    assert stores.codes.claim(db.session, code.code_hash, "client", 159) is code  # still good


def test_a_claim_committed_in_one_session_is_seen_by_another(stores: Stores) -> None:
    code = new_code()
    stores.codes.insert(db.session, code)
    db.session.commit()
    with Session(db.engine) as one:
        assert stores.codes.claim(one, code.code_hash, "client", 120) is not None
        one.commit()
    with Session(db.engine) as two:
        assert stores.codes.claim(two, code.code_hash, "client", 121) is None


def test_two_sessions_racing_for_a_code_get_it_exactly_once(stores: Stores) -> None:
    code = new_code()
    stores.codes.insert(db.session, code)
    db.session.commit()

    def claim(session: Session) -> AuthorizationCode | None:
        return stores.codes.claim(session, code.code_hash, "client", 120)

    first, second = race(claim, claim)
    assert first is not None and first.used_at == 120
    assert second is None
    stored = fresh(AuthorizationCode, code.code_hash)
    assert stored is not None and stored.used_at == 120


# --- users -----------------------------------------------------------------------------------


def test_get_gives_the_session_s_own_user_and_none_for_a_missing_one(stores: Stores) -> None:
    user = committed_user(email_verified=True, app_metadata={"plan": "pro"}, name="Ada")
    assert stores.users.get(db.session, user.id) is user
    db.session.commit()
    db.session.expunge_all()
    loaded = stores.users.get(db.session, user.id)
    assert loaded is not None and loaded is not user and columns(loaded) == columns(user)
    assert loaded.email_verified is True and loaded.app_metadata == {"plan": "pro"}
    assert db.session.get(User, user.id) is loaded
    assert stores.users.get(db.session, "usr_missing") is None


def test_find_by_email_matches_the_normalised_form_exactly(stores: Stores) -> None:
    user = committed_user()
    db.session.expunge_all()
    found = stores.users.find_by_email(db.session, user.email)
    assert found is not None and found.id == user.id
    assert stores.users.get(db.session, user.id) is found
    local, domain = user.email.split("@")
    for near in (
        user.email.upper(),
        f" {user.email}",
        f"{user.email} ",
        user.email[:-1],
        f"{local[:-1]}_@{domain}",  # a LIKE wildcard
        "%",
        f"x{user.email}",
    ):
        assert stores.users.find_by_email(db.session, near) is None, near


def test_count_login_adds_one_in_the_database_and_on_the_instance(stores: Stores) -> None:
    user = committed_user(logins_count=4)
    stores.users.count_login(db.session, user)
    assert user.logins_count == 5
    assert user not in db.session.dirty  # committed state, nothing for the ORM to write back
    stores.users.count_login(db.session, user)
    db.session.commit()
    stored = fresh(User, user.id)
    assert stored is not None and stored.logins_count == 6


def test_count_login_keeps_a_pending_change_to_the_user(stores: Stores) -> None:
    user = committed_user(logins_count=0)
    user.password_hash = "rehashed"  # as authenticate() does before counting
    stores.users.count_login(db.session, user)
    db.session.commit()
    stored = fresh(User, user.id)
    assert stored is not None and stored.password_hash == "rehashed"
    assert stored.logins_count == 1


def test_count_login_of_a_user_without_a_row_does_nothing(stores: Stores) -> None:
    ghost = User(id="usr_" + random_token(8), email="ghost@example.test", logins_count=3)
    stores.users.count_login(db.session, ghost)
    assert ghost.logins_count == 3
    db.session.rollback()
    assert fresh(User, ghost.id) is None


def test_two_sessions_counting_a_login_at_once_both_count(stores: Stores) -> None:
    user = committed_user(logins_count=10)

    def count(session: Session) -> int:
        mine = stores.users.get(session, user.id)
        assert mine is not None
        stores.users.count_login(session, mine)
        return mine.logins_count

    first, second = race(count, count)
    assert (first, second) == (11, 12)
    stored = fresh(User, user.id)
    assert stored is not None and stored.logins_count == 12


# --- audit -----------------------------------------------------------------------------------


def _events(marker: str) -> list[LogEvent]:
    with db.transaction() as other:
        found = list(other.scalars(select(LogEvent).where(LogEvent.description == marker)))
        other.expunge_all()
        return found


def test_an_event_is_written_once_with_its_defaults(stores: Stores) -> None:
    marker = random_token(8)
    stores.audit.insert(db.session, LogEvent(type="s", time=7, description=marker, ip="::1"))
    db.session.commit()
    detailed = random_token(8)
    event = LogEvent(type="f", time=8, description=detailed, details={"n": [1, None]})
    stores.audit.insert(db.session, event)
    db.session.commit()  # a flush here must not write the event a second time
    (plain,) = _events(marker)
    assert (plain.type, plain.time, plain.ip, plain.details) == ("s", 7, "::1", {})
    assert plain.id > 0 and plain.user_id is None
    (rich,) = _events(detailed)
    assert rich.details == {"n": [1, None]} and rich.id > plain.id


def test_an_event_in_a_transaction_rolled_back_is_not_written(stores: Stores) -> None:
    marker = random_token(8)
    stores.audit.insert(db.session, LogEvent(type="s", time=7, description=marker))
    db.session.rollback()
    assert _events(marker) == []


# --- factors ---------------------------------------------------------------------------------


def _factor(user_id: str, confirmed: bool) -> Factor:
    return Factor(
        id="fac_" + random_token(8),
        user_id=user_id,
        kind="totp",
        name="app",
        data={},
        confirmed=confirmed,
        created_at=1,
    )


def test_has_confirmed_counts_only_a_confirmed_factor_of_that_user(stores: Stores) -> None:
    user, other = committed_user(), committed_user()
    assert stores.factors.has_confirmed(db.session, user.id) is False
    db.session.add_all([_factor(user.id, confirmed=False), _factor(other.id, confirmed=True)])
    db.session.commit()
    assert stores.factors.has_confirmed(db.session, user.id) is False
    assert stores.factors.has_confirmed(db.session, other.id) is True
    db.session.add(_factor(user.id, confirmed=True))  # pending: flushed before the probe
    assert stores.factors.has_confirmed(db.session, user.id) is True
    assert stores.factors.has_confirmed(db.session, "usr_missing") is False


# --- protection counters ---------------------------------------------------------------------


def test_blocked_until_reads_the_keys_on_record_and_only_those(stores: Stores) -> None:
    base = f"uip:{random_token(6)}:"
    db.session.add_all(
        [
            ProtectionCounter(key=base + "blocked", count=3, window_ends=50, blocked_until=900),
            ProtectionCounter(key=base + "counted", count=1, window_ends=50, blocked_until=0),
        ]
    )
    db.session.commit()
    assert stores.counters.blocked_until(db.session, []) == {}
    asked = [base + "blocked", base + "counted", base + "absent", "x' OR '1'='1"]
    assert stores.counters.blocked_until(db.session, asked) == {
        base + "blocked": 900,
        base + "counted": 0,
    }
    many = [f"{base}{i}" for i in range(60)] + [base + "blocked"]
    assert stores.counters.blocked_until(db.session, many) == {base + "blocked": 900}


def test_blocked_until_sees_a_block_pending_in_the_session(stores: Stores) -> None:
    key = f"uip:{random_token(6)}"
    db.session.add(ProtectionCounter(key=key, count=0, window_ends=5, blocked_until=77))
    assert stores.counters.blocked_until(db.session, [key]) == {key: 77}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(ProtectionCounter.key == key)) == 0
