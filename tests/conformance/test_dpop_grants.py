"""DPoP (RFC 9449 §5) in every grant the token endpoint serves, one parametrised test per rule:
authorization_code, refresh_token, client_credentials, the device code (RFC 8628) and token
exchange (RFC 8693). On a server with the device flow on and nonces required (§8): a proof
binds the access token (``cnf.jkt``, ``token_type`` DPoP), a proof without the nonce is
``use_dpop_nonce``, an invalid proof is ``invalid_dpop_proof``, a client registered with
``dpop_bound_access_tokens`` is refused without a proof; each refusal leaves the grant's
credential as it was. A public client's refresh tokens from the device grant are bound to the
key. The module fails when the token endpoint gains a grant these tests do not run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import update

from idp.extensions import db
from idp.oauth.models import Client
from idp.oauth.server import authorization_server
from tests.actions.test_token_exchange import AT, IDP_TOKENS, exchanger, subject
from tests.conformance._dpop_helpers import new_key, proof, thumbprint
from tests.conformance._token_helpers import assert_no_store, assert_oauth_error, get_code
from tests.conftest import LiveServer, build_app, serving
from tests.device.helpers import DEVICE_GRANT, Person, device_client, started
from tests.helpers import jwt_parts

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"DEVICE_FLOW_ENABLED": True, "DPOP_NONCE_REQUIRED": True}
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        # token exchange answers once a custom-token-exchange action is bound
        server.factory.gen_action("exchange", "custom-token-exchange", IDP_TOKENS)
        yield server


def _url(op: Any) -> str:
    return f"{op.url}/oauth/token"


def nonce(op: Any) -> str:
    """§8: the server's current nonce, as a proof without one is answered."""
    resp = requests.post(
        _url(op),
        data={"grant_type": "client_credentials"},
        headers={"DPoP": proof(new_key(), "POST", _url(op))},
    )
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    return str(resp.headers["DPoP-Nonce"])


def good_proof(op: Any, key: Any) -> str:
    return proof(key, "POST", _url(op), nonce=nonce(op))


# --- one ready token request per grant: (client, form, whether the client is public) ------
Ready = tuple[Any, dict[str, str]]


def _code(op: Any) -> Ready:
    client, user = op.factory.gen_client("spa"), op.factory.gen_user()
    code, verifier = get_code(op, client, user, scope="openid offline_access")
    return client, {"grant_type": "authorization_code", "code": code,
                    "redirect_uri": client.redirect_uri, "code_verifier": verifier}  # fmt: skip


def _refresh(op: Any) -> Ready:
    client, form = _code(op)
    form["client_id"] = client.client_id
    tokens = requests.post(_url(op), data=form)  # no proof: an unbound refresh token
    assert tokens.status_code == 200, tokens.text
    return client, {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]}


def _client_credentials(op: Any) -> Ready:
    client, audience = op.factory.m2m()
    return client, {"grant_type": "client_credentials", "audience": audience}


def _device(op: Any, app_type: str = "native") -> Ready:
    client = device_client(op, app_type)
    body = started(op.url, client)
    page = Person(op.url).go(body["user_code"], op.factory.gen_user())
    assert page.status_code == 200 and "Device connected" in page.text, page.text[:800]
    return client, {"grant_type": DEVICE_GRANT, "device_code": body["device_code"]}


def _exchange(op: Any) -> Ready:
    client, api, other = exchanger(op), op.factory.gen_api(), op.factory.gen_api()
    token = subject(op, op.factory.gen_user().user_id, api)
    return client, {"grant_type": EXCHANGE, "subject_token": token,
                    "subject_token_type": AT, "audience": other}  # fmt: skip


GRANTS: dict[str, Callable[[Any], Ready]] = {
    "authorization_code": _code,
    "refresh_token": _refresh,
    "client_credentials": _client_credentials,
    DEVICE_GRANT: _device,
    EXCHANGE: _exchange,
}


def post(op: Any, client: Any, form: dict[str, str], dpop: str | None) -> requests.Response:
    data, auth = dict(form), None
    if client.client_secret is None:
        data["client_id"] = client.client_id
    else:
        auth = client.basic
    headers = {"DPoP": dpop} if dpop is not None else {}
    return requests.post(_url(op), data=data, auth=auth, headers=headers)


def assert_bound(resp: requests.Response, key: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body = dict(resp.json())
    assert body["token_type"] == "DPoP"
    assert jwt_parts(body["access_token"])[1]["cnf"] == {"jkt": thumbprint(key)}
    assert resp.headers["DPoP-Nonce"]  # §8.2: every answer carries the current nonce
    return body


def test_every_grant_of_the_token_endpoint_is_covered(op):
    """A grant added to the token endpoint fails here until these tests run it too."""
    with op.app.app_context():
        served = {cls.GRANT_TYPE for cls, _ext in authorization_server()._token_grants}
    assert served == set(GRANTS)


@pytest.mark.parametrize("grant", GRANTS)
def test_a_proof_binds_the_access_token(op, grant):
    client, form = GRANTS[grant](op)
    key = new_key()
    assert_bound(post(op, client, form, good_proof(op, key)), key)


@pytest.mark.parametrize("grant", GRANTS)
def test_a_proof_without_the_nonce_is_use_dpop_nonce(op, grant):
    """§8: answered with the nonce before the grant runs: the retry with it succeeds."""
    client, form = GRANTS[grant](op)
    key = new_key()
    resp = post(op, client, form, proof(key, "POST", _url(op)))
    assert_oauth_error(resp, 400, "use_dpop_nonce")
    assert_no_store(resp)
    fresh = resp.headers["DPoP-Nonce"]
    assert_bound(post(op, client, form, proof(key, "POST", _url(op), nonce=fresh)), key)


@pytest.mark.parametrize(
    "defect", ["other_key_signs", "htu_par", "htm_get", "stale_nonce", "replayed"]
)
@pytest.mark.parametrize("grant", GRANTS)
def test_an_invalid_proof_is_invalid_dpop_proof(op, grant, defect):
    """§4.3, §5: refused before the grant runs, so the credential is still good after."""
    client, form = GRANTS[grant](op)
    key, url, current = new_key(), _url(op), nonce(op)
    forged = {
        "other_key_signs": lambda: proof(new_key(), "POST", url, nonce=current,
                                         jwk=key.as_dict(private=False)),
        "htu_par": lambda: proof(key, "POST", f"{op.url}/oauth/par", nonce=current),
        "htm_get": lambda: proof(key, "GET", url, nonce=current),
        "stale_nonce": lambda: proof(key, "POST", url, nonce="made-up"),
        "replayed": lambda: _spent_proof(op, key, current),
    }[defect]()  # fmt: skip
    error = "use_dpop_nonce" if defect == "stale_nonce" else "invalid_dpop_proof"
    assert_oauth_error(post(op, client, form, forged), 400, error)
    assert_bound(post(op, client, form, good_proof(op, key)), key)


def _spent_proof(op: Any, key: Any, current: str) -> str:
    """A proof the server has seen already (§11.1), on another client's request."""
    spent = proof(key, "POST", _url(op), nonce=current)
    other, form = _client_credentials(op)
    assert post(op, other, form, spent).status_code == 200
    return spent


def _require_dpop(op: Any, client_id: str) -> None:
    with op.app.app_context():
        db.session.execute(
            update(Client)
            .where(Client.client_id == client_id)
            .values(dpop_bound_access_tokens=True)
        )
        db.session.commit()


@pytest.mark.parametrize("grant", GRANTS)
def test_a_client_requiring_dpop_is_refused_without_a_proof(op, grant):
    """§5.2: invalid_dpop_proof before the grant reads its credential, which stays good."""
    client, form = GRANTS[grant](op)
    _require_dpop(op, client.client_id)
    resp = post(op, client, form, None)
    assert_oauth_error(resp, 400, "invalid_dpop_proof")
    assert_no_store(resp)
    key = new_key()
    assert_bound(post(op, client, form, good_proof(op, key)), key)


def _refresh_with(op: Any, client: Any, token: str, key: Any | None) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return post(op, client, form, good_proof(op, key) if key is not None else None)


def test_device_grant_binds_a_public_clients_refresh_token_to_the_key(op):
    """§5: as after a code, the refresh token is this key's: another key or none is
    invalid_grant and rotates nothing; the rotated token keeps the binding."""
    client, form = _device(op)
    key = new_key()
    rt = assert_bound(post(op, client, form, good_proof(op, key)), key)["refresh_token"]
    assert_oauth_error(_refresh_with(op, client, rt, new_key()), 400, "invalid_grant")
    assert_oauth_error(_refresh_with(op, client, rt, None), 400, "invalid_grant")
    rotated = assert_bound(_refresh_with(op, client, rt, key), key)["refresh_token"]
    assert_oauth_error(_refresh_with(op, client, rotated, new_key()), 400, "invalid_grant")


def test_device_grant_leaves_a_confidential_clients_refresh_token_unbound(op):
    """§5: a confidential client's refresh token is bound to its authentication."""
    client, form = _device(op, "regular_web")
    key = new_key()
    tokens = assert_bound(post(op, client, form, good_proof(op, key)), key)
    other = new_key()
    assert_bound(_refresh_with(op, client, tokens["refresh_token"], other), other)
