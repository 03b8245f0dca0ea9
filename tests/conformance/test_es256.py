"""ES256 signing keys (issue: "RS256 by default, ES256 available")."""

from __future__ import annotations

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db, services
from idp.keys.service import rotate
from tests.helpers import jwt_parts, login_and_redeem


def test_es256_key_signs_verifiable_tokens(op):
    with op.app.app_context():
        rotate(db.session, services().box, "ES256", keep_published_for=3600)
        db.session.commit()
    doc = requests.get(f"{op.url}/.well-known/openid-configuration").json()
    assert "ES256" in doc["id_token_signing_alg_values_supported"]
    keyset = KeySet.import_key_set(requests.get(doc["jwks_uri"]).json())
    client, user = op.factory.gen_client(), op.factory.gen_user()
    tokens = login_and_redeem(op.url, client, user)
    m2m, audience = op.factory.m2m()
    machine = requests.post(
        f"{op.url}/oauth/token",
        auth=m2m.basic,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    for token in (tokens["id_token"], tokens["access_token"], machine.json()["access_token"]):
        header, _ = jwt_parts(token)
        assert header["alg"] == "ES256"
        assert jwt.decode(token, keyset, algorithms=["ES256"]).claims["iss"] == op.url
    # the retired RS256 key is still published, so tokens it signed still verify
    assert {k["alg"] for k in requests.get(doc["jwks_uri"]).json()["keys"]} == {"RS256", "ES256"}
