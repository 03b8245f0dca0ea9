"""The Authentication Context Class References idp answers with (OIDC Core §2 ``acr``): names
only, shared by the protocol (idp.oauth.acr) and the MFA step that meets them (idp.mfa.policy)."""

from __future__ import annotations

# The PAPE multi-factor policy, the URI Auth0 uses for "MFA was done"
MFA_ACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
ACR_ASKING_FOR_MFA = frozenset({MFA_ACR, "mfa", "urn:idp:acr:mfa"})
