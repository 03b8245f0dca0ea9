"""The login pipeline (idp/flows/pipeline.py): what a login costs and how its state is kept.

A password login with TOTP and one post-login action validates the authorization request once,
takes the MFA decision once and enters /authorize once; the interaction keeps a typed,
versioned state; a chain never starts inside an open transaction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest

from idp.actions import chains
from idp.extensions import db
from idp.flows import policy
from idp.flows.models import Interaction
from idp.mfa.policy import MFA_ACR
from tests.helpers import Browser, auth_params, jwt_parts, pkce
from tests.mfa.test_totp import enrol, follow, login, mfa_page, post, tokens_from

CLAIM_ACTION = (
    "def on_execute_post_login(event, api):\n"
    "    api.id_token.set_custom_claim('https://x/ran', event.user.email)\n"
)


def _count_calls(monkeypatch: Any, counts: Counter[str], target: Any, name: str) -> None:
    original = getattr(target, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, counted)


def test_a_login_with_totp_and_an_action_validates_once_and_decides_mfa_once(
    op: Any, clock: Any, monkeypatch: Any
) -> None:
    from idp.flows import authorize as authorize_view
    from idp.mfa import flow as mfa_flow
    from idp.oauth.server import IdpAuthorizationServer

    client, user = op.factory.gen_client(), op.factory.gen_user()
    first = Browser(op.url)
    result, _ = login(op, first, client, user, acr_values=MFA_ACR)
    secret, _codes, _location = enrol(first, mfa_page(result))  # the user now has TOTP
    op.factory.clear_actions()
    op.factory.gen_action("ran", "post-login", CLAIM_ACTION)
    clock.advance(31)  # a fresh TOTP step

    counts: Counter[str] = Counter()
    _count_calls(monkeypatch, counts, authorize_view, "validate")
    _count_calls(monkeypatch, counts, IdpAuthorizationServer, "get_consent_grant")
    _count_calls(monkeypatch, counts, mfa_flow, "needed")
    _count_calls(monkeypatch, counts, chains, "run")
    browser = Browser(op.url)
    paths: list[str] = []
    browser.http.hooks["response"].append(lambda r, *a, **k: paths.append(urlsplit(r.url).path))

    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge), user)  # adaptive: MFA asked
    page = mfa_page(result)
    location, _ = follow(browser, post(browser, page, {"action": "totp",
                                                       "code": pyotp.TOTP(secret).at(clock.now())}))  # fmt: skip
    assert location and location.startswith(client.redirect_uri)
    claims = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]
    assert claims["https://x/ran"] == user.email and "mfa" in claims["amr"]

    assert counts["validate"] == 1 and counts["get_consent_grant"] == 1
    assert counts["needed"] == 1, "the MFA decision was taken more than once"
    assert counts["run"] == 1, "the post-login chain ran more than once"
    assert paths.count("/authorize") == 1, paths
    # /authorize (the form), the password POST (303 to the MFA page), its GET, the code POST
    assert len(paths) == 4, paths
    op.factory.clear_actions()


def test_the_policy_is_an_ordered_tuple_of_named_prompts() -> None:
    names = [p.name for p in policy.POLICY]
    assert names == ["login", "consent", "mfa", "post_login", "device"]
    # post-login runs non-interactively; a device's approval never meets prompt=none
    assert all(p.none_error is None for p in policy.POLICY[-2:])
    assert all(p.none_error for p in policy.POLICY[:-2])


def test_an_interaction_of_another_state_version_counts_as_expired(op: Any) -> None:
    client, user = op.factory.gen_client(), op.factory.gen_user()
    browser = Browser(op.url)
    result = browser.authorize(auth_params(client, pkce()[1]))
    assert result.login_shown
    with op.app.app_context():
        rows = db.session.query(Interaction).filter_by(client_id=client.client_id).all()
        assert len(rows) == 1 and rows[0].state["v"] == 1
        assert rows[0].state["request"]["redirect_uri"] == client.redirect_uri
        rows[0].state = {**rows[0].state, "v": 0}
        db.session.commit()
        uid = rows[0].uid
    page = browser.http.get(f"{op.url}/interaction/{uid}/login")
    assert page.status_code == 400 and "no longer valid" in page.text
    del user


def test_a_chain_refuses_to_start_inside_an_open_transaction(op: Any) -> None:
    op.factory.clear_actions()
    op.factory.gen_action("ran", "post-login", CLAIM_ACTION)
    with op.app.test_request_context("/"):
        db.session.execute(Interaction.__table__.select().limit(1))  # a transaction is open
        with pytest.raises(chains.OpenTransactionError):
            chains.run("post-login", {})
        db.session.commit()
        outcome = chains.run("post-login", {"user": {"email": "a@example.com"}})
        assert outcome.ran and outcome.denied is None
        assert outcome.effects.id_token_claims == {"https://x/ran": "a@example.com"}
    op.factory.clear_actions()
