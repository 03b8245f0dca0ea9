"""RFC 8693 token exchange, continued: delegation (``act``, ``may_act``, §4), revocation with
the subject token's grant, pairwise subjects (OIDC Core §8) and DPoP binding (RFC 9449 §5)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from idp.extensions import db, services
from idp.oauth import service as oauth
from tests.actions.test_token_exchange import (
    AT,
    GRANT,
    _actions,
    error,
    exchange,
    exchanger,
    setup,
    subject,
)
from tests.helpers import jwt_parts, login_and_redeem

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def test_pairwise_subjects_on_both_sides(op: Any) -> None:
    """A pairwise client's token carries its own ``sub`` (OIDC Core §8): the action is handed
    the user behind it, and a pairwise exchanging client gets the ``sub`` of its own sector."""
    from idp.oauth import pairwise

    client, user, api, other = setup(op)
    spa_like = op.factory.gen_client(redirect_uris=["https://one.test/cb"])
    gateway = exchanger(op)
    with op.app.app_context():
        for cid in (spa_like.client_id, gateway.client_id):
            pairwise.configure(services().config, oauth.get_client(db.session, cid), "pairwise")
        db.session.commit()
        services().clients.invalidate()
    first = login_and_redeem(op.url, spa_like, user, scope="openid read:things", audience=api)
    their_sub = jwt_parts(first["access_token"])[1]["sub"]
    assert their_sub != user.user_id
    with op.app.app_context():
        gateway_sub = services().box.pairwise_subject("rp.test", user.user_id)  # its sector
    for asking, expected in ((client, user.user_id), (gateway, gateway_sub)):
        resp = exchange(op, asking, subject_token=first["access_token"], audience=other)
        assert resp.status_code == 200, resp.text
        assert jwt_parts(resp.json()["access_token"])[1]["sub"] == expected
    assert len({their_sub, gateway_sub, user.user_id}) == 3
    [action] = _actions(op)
    assert all(r.outcome == "success" for r in op.factory.executions(action))


def test_a_dpop_proof_binds_the_exchanged_token(op: Any) -> None:
    """RFC 9449 §5: as at every grant, a proof binds the token (cnf.jkt, token_type DPoP)."""
    from tests.conformance._dpop_helpers import new_key, proof, thumbprint

    client, user, api, other = setup(op)
    key = new_key()
    resp = requests.post(f"{op.url}/oauth/token", auth=client.basic, timeout=30, data={
        "grant_type": GRANT, "subject_token_type": AT, "audience": other,
        "subject_token": subject(op, user.user_id, api),
    }, headers={"DPoP": proof(key, "POST", f"{op.url}/oauth/token")})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "DPoP"
    assert jwt_parts(resp.json()["access_token"])[1]["cnf"] == {"jkt": thumbprint(key)}


# ------------------------------------------------------------------ delegation (RFC 8693 §4)
def test_an_actor_token_makes_a_delegation_with_act(op: Any) -> None:
    client, user, api, other = setup(op)
    machine, machine_api = op.factory.m2m()
    actor = requests.post(f"{op.url}/oauth/token", auth=machine.basic, timeout=30, data={
        "grant_type": "client_credentials", "audience": machine_api}).json()["access_token"]  # fmt: skip
    resp = exchange(op, client, subject_token=subject(op, user.user_id, api), audience=other,
                    actor_token=actor, actor_token_type=AT)  # fmt: skip
    assert resp.status_code == 200, resp.text
    claims = jwt_parts(resp.json()["access_token"])[1]
    assert claims["sub"] == user.user_id
    assert claims["act"] == {"sub": machine.client_id}
    # delegated again by someone else: the earlier actor nests inside (§4.1)
    again = exchange(op, client, subject_token=resp.json()["access_token"], audience=api,
                     actor_token=subject(op, op.factory.gen_user().user_id, api),
                     actor_token_type=AT)  # fmt: skip
    assert again.status_code == 200, again.text
    act = jwt_parts(again.json()["access_token"])[1]["act"]
    assert act["act"] == {"sub": machine.client_id} and act["sub"] != machine.client_id


def test_may_act_names_who_may_act(op: Any) -> None:
    client, user, api, other = setup(op)
    admin = op.factory.gen_user()
    allowed = subject(op, admin.user_id, api)
    token = subject(op, user.user_id, api, may_act={"sub": admin.user_id})
    stranger = subject(op, op.factory.gen_user().user_id, api)
    for actor in (stranger, None):
        resp = exchange(op, client, subject_token=token, audience=other, actor_token=actor,
                        actor_token_type=AT if actor else None)  # fmt: skip
        assert "may_act" in error(resp, 400, "invalid_request")
    resp = exchange(op, client, subject_token=token, audience=other, actor_token=allowed,
                    actor_token_type=AT)  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["act"] == {"sub": admin.user_id}


def test_revoking_the_subject_grant_revokes_the_exchanged_token(op: Any) -> None:
    client, user, api, other = setup(op)
    app = op.factory.gen_client()
    first = login_and_redeem(op.url, app, user, scope="openid offline_access read:things",
                             audience=api)  # fmt: skip
    exchanged = exchange(op, client, subject_token=first["access_token"], audience=other)
    assert exchanged.status_code == 200, exchanged.text
    revoke = requests.post(f"{op.url}/oauth/revoke", auth=app.basic, timeout=30,
                           data={"token": first["refresh_token"]})  # fmt: skip
    assert revoke.status_code == 200
    intro = requests.post(f"{op.url}/oauth/introspect", auth=client.basic, timeout=30,
                          data={"token": exchanged.json()["access_token"]}).json()  # fmt: skip
    assert intro == {"active": False}
