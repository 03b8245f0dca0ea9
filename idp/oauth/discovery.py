"""The provider's metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2): the core below, then
what each optional feature contributes, so that a feature is advertised exactly when it is
enabled and its module says so next to its code (``@contributes``; a contributor reads the
configuration and adds or extends keys, e.g. appends to ``token_endpoint_auth_methods_supported``).
A switch is read from ``svc.config``, never from state derived from it, so that
tests/conformance/test_discovery_matches_configuration.py sees every switch the document follows
and holds a row for each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp.extensions import Services, services
from idp.identity.profile import STANDARD_CLAIMS
from idp.oauth.tokens import OIDC_SCOPES

Contributor = Callable[[dict[str, Any], Services], None]
CONTRIBUTORS: list[Contributor] = []


def contributes(contributor: Contributor) -> Contributor:
    """Register a feature's part of the metadata (called in registration order)."""
    CONTRIBUTORS.append(contributor)
    return contributor


def discovery_document() -> dict[str, Any]:
    svc = services()
    document = _core(svc)
    for contribute in CONTRIBUTORS:
        contribute(document, svc)
    return document


def _core(svc: Services) -> dict[str, Any]:
    iss = svc.issuer.issuer
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/.well-known/jwks.json",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "end_session_endpoint": f"{iss}/oidc/logout",
        "scopes_supported": list(OIDC_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": svc.keys.algorithms,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "acr",
            "amr",
            "at_hash",
            # OIDC Core §5.1, released at /userinfo by scope (§5.4)
            *STANDARD_CLAIMS,
        ],
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }
