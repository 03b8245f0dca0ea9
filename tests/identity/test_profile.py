"""Validation and storage of the standard claims (OIDC Core §5.1, §5.1.1): each refusal is a
one-line error naming the claim and nothing is applied; ``updated_at`` moves on a change only;
the JSON column round-trips through the login hot path's store (``STORES.users``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from idp.core.crypto import random_token
from idp.core.errors import ValidationError
from idp.extensions import db
from idp.identity import profile
from idp.identity.models import User
from idp.stores import STORES
from tests.conftest import LiveServer


@pytest.fixture
def ctx(live: LiveServer) -> Iterator[None]:
    with live.app.app_context():
        yield
        db.session.rollback()


def new_user(**extra: Any) -> User:
    values: dict[str, Any] = {
        "id": "usr_" + random_token(8),
        "email": f"{random_token(6)}@example.test".lower(),
        "email_verified": False,
        "name": None,
        "profile": {},
        "created_at": 1,
        "updated_at": 1,
    }
    return User(**(values | extra))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"birthdate": "10/12/1815"}, "birthdate must be YYYY-MM-DD or YYYY"),
        ({"birthdate": "1815-13-10"}, "birthdate must be YYYY-MM-DD or YYYY"),
        ({"birthdate": "2023-02-29"}, "birthdate must be YYYY-MM-DD or YYYY"),
        ({"birthdate": "0000"}, "birthdate must be YYYY-MM-DD or YYYY"),
        ({"zoneinfo": "Mars/Olympus"}, "zoneinfo must be an IANA time zone"),
        ({"locale": "english please"}, "locale must be a BCP 47 language tag"),
        ({"locale": "e"}, "locale must be a BCP 47 language tag"),
        ({"phone_number": "0612345678"}, "phone_number must be E.164"),
        ({"phone_number": "+0612345678"}, "phone_number must be E.164"),
        ({"phone_number": "+33 6 12 34 56 78"}, "phone_number must be E.164"),
        ({"picture": "javascript:alert(1)"}, "picture must be an http(s) URL"),
        ({"website": "ftp://example.test/"}, "website must be an http(s) URL"),
        ({"profile": "https://"}, "profile must be an http(s) URL"),
        ({"address": {"street": "1 Main St"}}, "address has unknown member(s) street"),
        ({"address": ["Paris"]}, "address must be a JSON object"),
        ({"address": {"locality": 75}}, "address.locality must be a string"),
        ({"nickname": "x" * 256}, "nickname is longer than 255 characters"),
        ({"given_name": "Ada\x00"}, "given_name must not contain control characters"),
        ({"family_name": 7}, "family_name must be a string"),
        ({"phone_number_verified": "yes"}, "phone_number_verified must be true or false"),
        ({"phone_number_verified": True}, "phone_number_verified needs a phone_number"),
        ({"email": "other@example.test"}, "'email' is not a standard claim an operator can set"),
        ({"updated_at": 5}, "'updated_at' is not a standard claim an operator can set"),
        ({"favourite_colour": "blue"}, "'favourite_colour' is not a standard claim"),
    ],
)
def test_each_refusal_is_one_clear_line_and_nothing_is_applied(changes, message):
    user = new_user(profile={"nickname": "kept"})
    with pytest.raises(ValidationError) as raised:
        profile.update_profile(user, {"given_name": "Ada", **changes})
    text = str(raised.value)
    assert message in text and "\n" not in text, text
    assert user.profile == {"nickname": "kept"} and user.updated_at == 1


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("birthdate", "1815-12-10"),
        ("birthdate", "0000-02-29"),  # year omitted (§5.1)
        ("birthdate", "1815"),
        ("zoneinfo", "America/Los_Angeles"),
        ("locale", "en-US"),
        ("locale", "fr_CA"),
        ("phone_number", "+14155550100"),
        ("website", "http://example.test/~ada"),
        ("gender", "non-binary"),
    ],
)
def test_accepted_values_are_stored_as_given(claim, value):
    user = new_user()
    assert profile.update_profile(user, {claim: value})
    assert profile.standard_claims(user)[claim] == value


def test_updated_at_moves_on_a_change_and_not_otherwise(clock: Any) -> None:
    user = new_user()
    assert profile.update_profile(user, {"nickname": "ada", "address": {"country": "FR"}})
    first = user.updated_at
    assert first >= clock.now() - 1
    clock.advance(50)
    assert not profile.update_profile(user, {"nickname": "ada", "address": {"country": "FR"}})
    assert not profile.update_profile(user, {"middle_name": ""})  # removing what is absent
    assert user.updated_at == first
    assert profile.update_profile(user, {"name": "Ada"})  # the name column counts too
    assert user.updated_at >= first + 50 and user.name == "Ada"


def test_a_new_phone_number_is_unverified_unless_said_and_goes_with_its_flag():
    user = new_user()
    profile.update_profile(user, {"phone_number": "+14155550100", "phone_number_verified": True})
    assert user.profile == {"phone_number": "+14155550100", "phone_number_verified": True}
    profile.update_profile(user, {"phone_number": "+14155550199"})
    assert user.profile == {"phone_number": "+14155550199", "phone_number_verified": False}
    profile.update_profile(user, {"phone_number": ""})
    assert user.profile == {}


def test_blank_values_remove_and_strings_are_trimmed():
    user = new_user(name="Old")
    profile.update_profile(user, {"nickname": "  ada  ", "address": {"locality": "Paris"}})
    assert user.profile == {"nickname": "ada", "address": {"locality": "Paris"}}
    profile.update_profile(user, {"name": "", "address": {}, "nickname": None})
    assert user.profile == {} and user.name is None


def test_rows_older_than_the_migration_read_as_no_claims():
    user = new_user(profile=None)
    assert set(profile.standard_claims(user)) == {"email", "email_verified", "updated_at"}
    assert profile.update_profile(user, {"locale": "de"})
    assert user.profile == {"locale": "de"}


def test_the_profile_column_round_trips_through_the_login_store(ctx: None) -> None:
    user = new_user()
    profile.update_profile(
        user, {"given_name": "Zoë", "address": {"formatted": "1 Main St\nSpringfield"}}
    )
    db.session.add(user)
    db.session.commit()
    db.session.expunge_all()
    got = STORES.users.get(db.session, user.id)
    assert got is not None and got.profile == user.profile
    db.session.expunge_all()
    found = STORES.users.find_by_email(db.session, user.email)
    assert found is not None and found.profile == {
        "given_name": "Zoë",
        "address": {"formatted": "1 Main St\nSpringfield"},
    }
    # a change made on the instance the store handed out is flushed by the ORM as usual
    profile.update_profile(found, {"nickname": "z"})
    db.session.commit()
    db.session.expunge_all()
    again = STORES.users.get(db.session, user.id)
    assert again is not None and (again.profile or {})["nickname"] == "z"
