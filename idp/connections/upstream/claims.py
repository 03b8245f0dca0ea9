"""From what an upstream said to an :class:`UpstreamProfile`: the standard claims idp keeps
(OIDC Core §5.1, the list in ``idp.identity.profile``), the raw profile, the tokens."""

from __future__ import annotations

from typing import Any

from idp.connections.upstream.contract import UpstreamProfile
from idp.core import clock
from idp.identity.profile import EDITABLE

# Claims about the token, not the person: left out of ``raw`` (OIDC Core §2, §3.1.3.6).
TOKEN_CLAIMS = frozenset({"nonce", "at_hash", "c_hash", "aud", "exp", "iat", "auth_time"})
# Never taken from userinfo over the ID token: they describe the token or its issuer.
_ID_TOKEN_ONLY = TOKEN_CLAIMS | {"iss", "sub", "azp", "nbf", "jti", "sid", "acr", "amr"}


def verified(value: Any) -> bool:
    """True only for an explicit yes: JSON ``true`` or the string ``"true"`` (Apple sends
    strings). Absent, ``null``, ``"1"``, ``"yes"``: not verified."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def merge_userinfo(id_claims: dict[str, Any], userinfo: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims with userinfo's on top, token claims kept from the ID token."""
    extra = {k: v for k, v in userinfo.items() if k not in _ID_TOKEN_ONLY}
    return {**id_claims, **extra}


def standard(claims: dict[str, Any]) -> dict[str, Any]:
    """The standard claims idp keeps on a user, when present and not null (the login flow
    validates each value and drops a bad one)."""
    return {k: claims[k] for k in EDITABLE if claims.get(k) is not None}


def tokens(answer: dict[str, Any]) -> dict[str, Any]:
    """The upstream's tokens (RFC 6749 §5.1), ``expires_in`` made absolute."""
    kept = {k: answer[k] for k in ("access_token", "refresh_token", "id_token")
            if isinstance(answer.get(k), str)}  # fmt: skip
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():  # some send a string
        expires_in = int(expires_in)
    if isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0:
        kept["expires_at"] = clock.now() + expires_in
    return kept


def profile(
    *, user_id: str, email: Any, email_verified: Any, claims: dict[str, Any],
    raw: dict[str, Any], answer: dict[str, Any], amr: Any = None,
) -> UpstreamProfile:  # fmt: skip
    has_email = isinstance(email, str) and bool(email)
    return UpstreamProfile(
        user_id=user_id,
        email=email if has_email else None,
        email_verified=has_email and verified(email_verified),
        claims=standard(claims),
        raw={k: v for k, v in raw.items() if k not in TOKEN_CLAIMS},
        tokens=tokens(answer),
        amr=[a for a in amr if isinstance(a, str)] if isinstance(amr, list) else [],
    )
