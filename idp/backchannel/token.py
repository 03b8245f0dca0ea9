"""The Logout Token (OpenID Connect Back-Channel Logout 1.0 §2.4), signed at each delivery
attempt (idp.backchannel.delivery) for the row that asked for it (idp.backchannel.service)."""

from __future__ import annotations

from idp.backchannel.models import BackchannelLogout
from idp.core import clock
from idp.extensions import Services
from idp.oauth.subjects import subject_for

EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4: explicit typing, so it is never taken for an ID token
TOKEN_TYPE = "logout+jwt"  # noqa: S105 - a media type


def logout_token(svc: Services, row: BackchannelLogout) -> str:
    """§2.4: iss, aud, iat, exp, jti, events, sid and sub (the client's ``sub``, pairwise where
    it is, idp.oauth.subjects); never a nonce (§2.4 forbids one), ``typ: logout+jwt``."""
    now = clock.now()
    claims = {
        "iss": svc.issuer.issuer,
        "sub": subject_for(row.client_id, row.user_id),
        "aud": row.client_id,
        "iat": now,
        "exp": now + int(svc.config["BACKCHANNEL_LOGOUT_TOKEN_TTL"]),
        "jti": row.id,
        "events": {EVENT: {}},
        "sid": row.sid,
    }
    # §2.4: "The same keys are used to sign ... Logout Tokens as are used for ID Tokens": the
    # client's id_token_signed_response_alg, else RS256
    client = svc.clients.get(row.client_id)
    registered = client.id_token_signed_response_alg if client is not None else None
    return svc.keys.sign(claims, typ=TOKEN_TYPE, alg=svc.keys.id_token_alg(registered))
