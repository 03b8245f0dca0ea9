"""ES256 signing keys beside RS256 ones (issue: "RS256 by default, ES256 available").

OIDC Discovery 1.0 §3: ``id_token_signing_alg_values_supported`` must include RS256, and lists
what idp signs with now (not a retired key's algorithm, nor a staged one's). OIDC Registration
§2: ID tokens are RS256 unless the client registered ``id_token_signed_response_alg``, while
the access tokens (RFC 9068) follow the tenant's key. A rotation to ES256 makes an RS256
companion with it (idp.keys.service)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.backchannel.token import logout_token
from idp.extensions import db, services
from idp.keys import service as keys
from tests.conftest import LiveServer, build_app, serving
from tests.helpers import Browser, auth_params, jwt_parts, login_and_redeem, pkce, redeem
from tests.management.conftest import ALL, Mgmt, grant

OVERLAP = 600


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("es256")
    with serving(lambda port: build_app(tmp, port, KEY_PUBLISH_BEFORE_SIGNING_SECONDS=OVERLAP,
                                        BACKCHANNEL_LOGOUT_DELIVERY=False)) as server:  # fmt: skip
        yield server


@pytest.fixture(autouse=True)
def _one_rs256_key(live: LiveServer, clock: Any) -> Iterator[None]:
    """Each test starts from the one RS256 key of a fresh instance."""
    yield
    clock.reset()
    with live.app.app_context():
        db.session.query(keys.SigningKey).delete()
        keys.create_key(db.session, services().box, "RS256")
        db.session.commit()
        services().keys.changed()


def _rotate(op: Any, alg: str, overlap: int = 0) -> str:
    """What ``idp keys rotate --alg ALG`` does (``--now`` with overlap 0)."""
    with op.app.app_context():
        svc = services()
        row = keys.rotate(db.session, svc.box, alg, keys.publish_window(svc.config), overlap)
        db.session.commit()
        svc.keys.changed()
        return row.kid


def _advertised(op: Any) -> set[str]:
    doc = requests.get(f"{op.url}/.well-known/openid-configuration", timeout=30).json()
    return set(doc["id_token_signing_alg_values_supported"])


def _jwks(op: Any) -> dict[str, str]:
    """kid -> alg of the published keys."""
    published = requests.get(f"{op.url}/.well-known/jwks.json", timeout=30).json()["keys"]
    return {k["kid"]: k["alg"] for k in published}


def _headers(op: Any, client: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A login's ID token and access token headers, each verified against the JWKS."""
    got = login_and_redeem(op.url, client, op.factory.gen_user())
    keyset = KeySet.import_key_set(requests.get(f"{op.url}/.well-known/jwks.json",
                                                timeout=30).json())  # fmt: skip
    for token in (got["id_token"], got["access_token"]):
        assert jwt.decode(token, keyset, algorithms=["RS256", "ES256"]).claims["iss"] == op.url
    return jwt_parts(got["id_token"])[0], jwt_parts(got["access_token"])[0], got


def _set_alg(mgmt: Mgmt, client_id: str, alg: str | None) -> requests.Response:
    return mgmt.call("PATCH", f"/clients/{client_id}", json={"id_token_signed_response_alg": alg})


def test_a_rotation_to_es256_keeps_id_tokens_rs256_unless_the_client_asks(op: Any) -> None:
    old = next(iter(_jwks(op)))
    es256 = _rotate(op, "ES256")
    published = _jwks(op)
    companion = next(k for k, alg in published.items() if alg == "RS256" and k != old)
    assert published == {old: "RS256", es256: "ES256", companion: "RS256"}  # old: retired
    assert _advertised(op) == {"RS256", "ES256"}

    client = op.factory.gen_client()
    id_header, at_header, _ = _headers(op, client)
    assert (id_header["alg"], id_header["kid"]) == ("RS256", companion)  # never the retired key
    assert (at_header["alg"], at_header["kid"]) == ("ES256", es256)  # the tenant's algorithm
    m2m, audience = op.factory.m2m()
    machine = requests.post(
        f"{op.url}/oauth/token",
        auth=m2m.basic,
        timeout=30,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert jwt_parts(machine.json()["access_token"])[0]["alg"] == "ES256"  # fmt: skip

    mgmt = Mgmt(op, grant(op, ALL), ALL, [])
    changed = _set_alg(mgmt, client.client_id, "ES256")
    assert changed.status_code == 200, changed.text
    assert changed.json()["id_token_signed_response_alg"] == "ES256"
    id_header, at_header, _ = _headers(op, client)
    assert (id_header["alg"], id_header["kid"]) == ("ES256", es256)
    assert at_header["alg"] == "ES256"
    with op.app.app_context():  # Logout Tokens as the client's ID tokens (BCL §2.4)
        row = SimpleNamespace(client_id=client.client_id, user_id="u1", id="bcl1", sid="s1")
        assert jwt_parts(logout_token(services(), row))[0]["kid"] == es256  # type: ignore[arg-type]
    assert _set_alg(mgmt, client.client_id, None).json()["id_token_signed_response_alg"] is None
    assert _headers(op, client)[0]["kid"] == companion
    with op.app.app_context():
        services().clients.invalidate()
        assert jwt_parts(logout_token(services(), row))[0]["kid"] == companion  # type: ignore[arg-type]


def test_advertised_algorithms_are_those_that_sign_now(op: Any, clock: Any) -> None:
    mgmt = Mgmt(op, grant(op, ALL), ALL, [])
    client = op.factory.gen_client()
    assert _advertised(op) == {"RS256"}
    refused = _set_alg(mgmt, client.client_id, "ES256")
    assert refused.status_code == 400 and refused.json()["errorCode"] == "invalid_body"
    message = refused.json()["message"]
    assert message.startswith("id_token_signed_response_alg: ") and "ES256" in message
    assert _set_alg(mgmt, client.client_id, "HS256").status_code == 400  # not one idp signs

    staged = _rotate(op, "ES256", OVERLAP)
    assert _jwks(op)[staged] == "ES256"  # published before it signs...
    assert _advertised(op) == {"RS256"}  # ...but not advertised: nothing is signed with it
    assert _set_alg(mgmt, client.client_id, "ES256").status_code == 400
    clock.advance(OVERLAP + 1)
    assert _advertised(op) == {"RS256", "ES256"}
    assert _set_alg(mgmt, client.client_id, "ES256").status_code == 200
    assert _headers(op, client)[0]["alg"] == "ES256"

    back = _rotate(op, "RS256")
    assert _jwks(op)[staged] == "ES256"  # retired: published while its tokens live
    assert _advertised(op) == {"RS256"}  # but no longer signing
    other = op.factory.gen_client()
    assert _set_alg(mgmt, other.client_id, "ES256").status_code == 400
    id_header, at_header, _ = _headers(op, other)
    assert id_header["kid"] == at_header["kid"] == back

    # the client that chose ES256 gets no ID token in another algorithm: 503, the code kept
    verifier, challenge = pkce()
    code = Browser(op.url).authorize(auth_params(client, challenge, scope="openid"),
                                     op.factory.gen_user()).code  # fmt: skip
    assert code and redeem(op.url, client, code, verifier).status_code == 503
    assert _set_alg(mgmt, client.client_id, None).status_code == 200  # RS256 again
    resp = redeem(op.url, client, code, verifier)
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["id_token"])[0]["kid"] == back


def test_a_staged_set_is_revoked_whole(op: Any) -> None:
    """Revoking the staged ES256 key takes its RS256 companion out too: the current key
    goes on signing alone, as before the rotation."""
    old = next(iter(_jwks(op)))
    staged = _rotate(op, "ES256", OVERLAP)
    assert len(_jwks(op)) == 3
    with op.app.app_context():
        keys.revoke(db.session, staged)
        db.session.commit()
        services().keys.changed()
        assert keys.current_key(db.session).kid == old  # type: ignore[union-attr]
    assert _jwks(op) == {old: "RS256"}
