"""The login prompt checks (OIDC Core §3.1.2.1) as a table, without a server."""

from __future__ import annotations

import pytest

from idp.core import clock
from idp.flows.models import LoginSession
from idp.flows.prompts import PromptContext, login_reasons


def _session(auth_age: int, user_id: str = "usr_1") -> LoginSession:
    now = clock.now()
    return LoginSession(
        id_hash="h",
        sid="s",
        user_id=user_id,
        auth_time=now - auth_age,
        amr=["pwd"],
        created_at=now,
        expires_at=now + 60,
    )


def _ctx(session=None, prompts=(), max_age=None, hint_sub=None, fresh=False):
    return PromptContext(session, frozenset(prompts), max_age, hint_sub, fresh)


@pytest.mark.parametrize(
    ("ctx", "reasons"),
    [
        (_ctx(), ["no_session"]),
        (_ctx(_session(5)), []),
        (_ctx(_session(5), prompts=["login"]), ["prompt_login"]),
        (_ctx(_session(5), prompts=["login"], fresh=True), []),
        (_ctx(_session(5), max_age=1), ["max_age"]),
        (_ctx(_session(5), max_age=0), ["max_age"]),
        (_ctx(_session(0), max_age=0), ["max_age"]),  # a login this very second: still asks
        (_ctx(_session(0), max_age=0, fresh=True), []),
        (_ctx(_session(5), max_age=10000), []),
        (_ctx(_session(5), max_age=1, fresh=True), []),
        (_ctx(_session(5), hint_sub="usr_2"), ["id_token_hint_mismatch"]),
        (_ctx(_session(5), hint_sub="usr_1"), []),
        (_ctx(_session(5), prompts=["select_account"]), ["prompt_login"]),
    ],
)
def test_login_reasons(ctx, reasons):
    assert login_reasons(ctx) == reasons
