"""idp.core.fastsql: plain DBAPI statements that must read and write exactly what the ORM does
(on SQLite, and on PostgreSQL when the suite runs there)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import exc, inspect, select
from sqlalchemy.orm.exc import StaleDataError

from idp.audit.models import LogEvent
from idp.core import fastsql
from idp.core.crypto import random_token
from idp.extensions import db
from idp.flows.models import Interaction, LoginSession
from idp.identity.models import User
from idp.oauth.models import AccessTokenRecord
from tests.conftest import LiveServer


@pytest.fixture
def ctx(live: LiveServer) -> Iterator[None]:
    with live.app.app_context():
        yield
        db.session.rollback()


def fresh(model: type, pk: Any) -> Any:
    """The row as the ORM reads it in a new session (no identity map in common)."""
    with db.transaction() as other:
        row = other.get(model, pk)
        assert row is not None
        other.expunge(row)
        return row


def columns(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


def new_user(**extra: Any) -> User:
    return User(
        id="usr_" + random_token(8),
        email=f"{random_token(6)}@example.test".lower(),
        created_at=1,
        updated_at=1,
        **extra,
    )


def test_insert_writes_what_the_orm_would_read_back_defaults_included(ctx: None) -> None:
    raw, orm = new_user(user_metadata={"a": [1, "x"]}), new_user(user_metadata={"a": [1, "x"]})
    fastsql.insert(db.session, raw)
    db.session.add(orm)
    db.session.commit()
    got_raw, got_orm = columns(fresh(User, raw.id)), columns(fresh(User, orm.id))
    for differs in ("id", "email"):
        got_raw.pop(differs), got_orm.pop(differs)
    assert got_raw == got_orm
    assert got_raw["app_metadata"] == {} and got_raw["email_verified"] is False
    assert got_raw["logins_count"] == 0 and got_raw["user_metadata"] == {"a": [1, "x"]}


def test_an_inserted_row_is_persistent_so_later_changes_are_flushed(ctx: None) -> None:
    user = new_user()
    fastsql.insert(db.session, user)
    assert user in db.session and db.session.get(User, user.id) is user
    user.name = "Changed"
    db.session.commit()
    assert fresh(User, user.id).name == "Changed"


def test_get_and_load_read_typed_values_and_prefer_the_identity_map(ctx: None) -> None:
    user = new_user(email_verified=True, app_metadata={"plan": "pro"})
    db.session.add(user)
    db.session.commit()
    db.session.expunge_all()
    loaded = fastsql.get(db.session, User, user.id)
    assert loaded is not None and loaded is not user
    assert loaded.email_verified is True and loaded.app_metadata == {"plan": "pro"}
    assert fastsql.get(db.session, User, user.id) is loaded  # no second object
    assert fastsql.load(db.session, User, "email = :e", {"e": user.email}) is loaded
    assert db.session.get(User, user.id) is loaded
    assert fastsql.get(db.session, User, "usr_missing") is None
    assert fastsql.load(db.session, User, "email = :e", {"e": "nobody@x.test"}) is None


def test_statements_see_pending_orm_changes(ctx: None) -> None:
    user = new_user()
    db.session.add(user)  # pending, not flushed
    found = fastsql.execute(db.session, "SELECT id FROM users WHERE id = :id", {"id": user.id})
    assert found.fetchone() is not None


def test_returning_gives_the_changed_row_once(ctx: None) -> None:
    row = Interaction(
        uid=random_token(8),
        client_id="c",
        browser_hash="h",
        created_at=1,
        expires_at=10,
        state={"state": "s"},
    )
    fastsql.insert(db.session, row)
    db.session.commit()
    claim = "UPDATE interactions SET created_at = :at WHERE uid = :uid AND created_at = 1"
    first = fastsql.returning(db.session, Interaction, claim, {"at": 5, "uid": row.uid})
    assert first is row and row.created_at == 5 and row.state == {"state": "s"}
    assert fastsql.returning(db.session, Interaction, claim, {"at": 6, "uid": row.uid}) is None
    db.session.commit()
    assert fresh(Interaction, row.uid).created_at == 5


def test_delete_removes_the_row_and_forgets_the_object(ctx: None) -> None:
    session_row = LoginSession(
        id_hash=random_token(16),
        sid=random_token(8),
        user_id=_committed_user().id,
        auth_time=1,
        created_at=1,
        expires_at=10,
    )
    fastsql.insert(db.session, session_row)
    assert session_row.amr == []  # the column's default, applied as a flush would
    db.session.commit()
    fastsql.delete(db.session, session_row)
    assert session_row not in db.session
    db.session.commit()
    with db.transaction() as other:
        assert other.get(LoginSession, session_row.id_hash) is None


def test_rows_keyed_by_the_database_are_written_but_not_tracked(ctx: None) -> None:
    marker = random_token(8)
    event = LogEvent(type="t", time=1, description=marker)
    fastsql.insert(db.session, event)
    assert event not in db.session
    db.session.commit()
    with db.transaction() as other:
        stored = other.scalar(select(LogEvent).where(LogEvent.description == marker))
        assert stored is not None and stored.id > 0 and stored.details == {}


def test_a_boolean_default_and_a_null_round_trip(ctx: None) -> None:
    record = AccessTokenRecord(jti=random_token(8), client_id="c", expires_at=1)
    fastsql.insert(db.session, record)
    db.session.commit()
    stored = fresh(AccessTokenRecord, record.jti)
    assert stored.revoked is False and stored.user_id is None and stored.grant_id is None


def _committed_user() -> User:
    user = new_user()
    db.session.add(user)
    db.session.commit()
    return user


def test_a_row_inserted_then_rolled_back_is_dropped_from_the_session_as_the_orm_would(
    ctx: None,
) -> None:
    user = new_user(name="Gone")
    fastsql.insert(db.session, user)
    db.session.rollback()
    assert user not in db.session and user.name == "Gone"  # readable, not expired
    with db.transaction() as other:
        assert other.get(User, user.id) is None
    kept = new_user()
    fastsql.insert(db.session, kept)
    db.session.commit()
    db.session.rollback()  # nothing to undo: the insert is committed
    assert kept in db.session and kept.email


def test_driver_errors_are_raised_as_sqlalchemy_errors_without_parameters(ctx: None) -> None:
    """The app answers SQLAlchemy's errors (409 for a conflict, 503 for a database that is
    down or locked); a bare driver error would be a 500."""
    user = _committed_user()
    twin = new_user()
    twin.id = user.id
    with pytest.raises(exc.IntegrityError) as caught:
        fastsql.insert(db.session, twin)
    assert twin.email not in str(caught.value)  # no parameters in the message


def test_get_rereads_an_expired_row_and_sees_it_gone(ctx: None) -> None:
    user = _committed_user()
    user_id = user.id  # read now: an expired attribute would begin a transaction to reload
    fastsql.execute(db.session, "SELECT 1")
    db.session.rollback()  # expires what the session holds
    assert inspect(user).expired_attributes
    with db.transaction() as other:
        other.delete(other.get(User, user_id))
    assert fastsql.get(db.session, User, user_id) is None


def test_a_json_string_is_decoded_once(ctx: None) -> None:
    row = Interaction(
        uid=random_token(8),
        client_id="c",
        browser_hash="h",
        created_at=1,
        expires_at=10,
        state="123",  # type: ignore[arg-type]
    )
    db.session.add(row)
    db.session.commit()
    db.session.expunge_all()
    loaded = fastsql.get(db.session, Interaction, row.uid)
    assert loaded is not None and loaded.state == "123"


def test_update_writes_what_the_orm_would_and_leaves_nothing_to_flush(ctx: None) -> None:
    raw, orm = new_user(), new_user()
    db.session.add_all([raw, orm])
    db.session.commit()  # expire_on_commit is off: the update must not need a reload
    metadata = {"groups": ["a", "b"], "n": None}
    fastsql.update(db.session, raw, {"app_metadata": metadata, "email_verified": True})
    assert raw.app_metadata == metadata and raw.email_verified is True
    assert raw not in db.session.dirty  # committed values: no second UPDATE at the flush
    orm.app_metadata, orm.email_verified = metadata, True
    db.session.commit()
    got_raw, got_orm = columns(fresh(User, raw.id)), columns(fresh(User, orm.id))
    for differs in ("id", "email"):
        got_raw.pop(differs), got_orm.pop(differs)
    assert got_raw == got_orm


def test_update_of_a_row_gone_raises_as_the_orm_flush_would(ctx: None) -> None:
    user = new_user()
    db.session.add(user)
    db.session.commit()
    with db.transaction() as other:
        other.execute(User.__table__.delete().where(User.__table__.c.id == user.id))
    with pytest.raises(StaleDataError):
        fastsql.update(db.session, user, {"name": "x"})


def test_update_to_the_loaded_values_sends_nothing_as_a_flush_would(ctx: None) -> None:
    user = new_user(name="same")
    db.session.add(user)
    db.session.commit()
    with db.transaction() as other:
        other.execute(User.__table__.delete().where(User.__table__.c.id == user.id))
    fastsql.update(db.session, user, {"name": "same"})  # no statement: no StaleDataError
    with pytest.raises(StaleDataError):
        fastsql.update(db.session, user, {"name": "other"})
