"""From a verified assertion to idp's upstream profile: attribute names to profile fields.

Without a mapping (``map``: field -> attribute name), the names the common IdPs send are
understood: ADFS and Entra ID (the WS-Federation claim URIs), Okta's defaults, LDAP's
(``mail``, ``givenName``, ``sn``, ``cn``) and their OIDs (eduPerson / inetOrgPerson, the
``urn:oid:`` names of SAML 2.0 Profiles §8.2 X.500/LDAP attribute profile).
"""

from __future__ import annotations

from typing import Any

from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

from idp.connections.saml.contract import UpstreamProfile, refused

CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
DEFAULTS: dict[str, tuple[str, ...]] = {
    "email": (
        CLAIMS + "emailaddress", "email", "mail", "emailAddress", "Email",
        "urn:oid:0.9.2342.19200300.100.1.3", "http://schemas.xmlsoap.org/claims/EmailAddress",
    ),
    "given_name": (CLAIMS + "givenname", "firstName", "givenName", "given_name",
                   "urn:oid:2.5.4.42"),
    "family_name": (CLAIMS + "surname", "lastName", "sn", "surname", "family_name",
                    "urn:oid:2.5.4.4"),
    "name": (CLAIMS + "name", "http://schemas.microsoft.com/identity/claims/displayname",
             "displayName", "cn", "name", "urn:oid:2.16.840.1.113730.3.1.241", "urn:oid:2.5.4.3"),
    "groups": (
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
        "groups", "memberOf", "urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "Role",
    ),
}  # fmt: skip
# AuthnContextClassRef (SAML 2.0 Authn Context §3.4) to RFC 8176 amr values, where one fits.
AMR = {
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Password": "pwd",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": "pwd",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:X509": "hwk",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard": "sc",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI": "sc",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos": "kba",
    "http://schemas.microsoft.com/claims/multipleauthn": "mfa",
    "https://refeds.org/profile/mfa": "mfa",
}
MAX_VALUES = 256  # per attribute: a group list is long, not unbounded


def attributes(assertion: Any) -> dict[str, list[str]]:
    """The assertion's attributes (Core §2.7.3): name -> its string values."""
    found: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            name = attribute.name
            if not isinstance(name, str) or not name:
                continue
            values = found.setdefault(name, [])
            for value in attribute.attribute_value or []:
                text = value.text
                if isinstance(text, str) and text.strip() and len(values) < MAX_VALUES:
                    values.append(text.strip())
    return found


def _first(attrs: dict[str, list[str]], names: tuple[str, ...]) -> str | None:
    for name in names:
        for value in attrs.get(name, []):
            return value
    return None


def build(
    options: dict[str, Any], assertion: Any, name_id: Any, authn: dict[str, Any]
) -> UpstreamProfile:
    """The profile: ``user_id`` the NameID (or the mapped ``user_id`` attribute), the standard
    fields mapped, ``email_verified`` as the operator configured (``email_verified``: the IdP
    is authoritative for its users' addresses; SAML itself says nothing about it)."""
    attrs = attributes(assertion)
    mapping = options.get("map") or {}

    def field(name: str) -> str | None:
        mapped = mapping.get(name)
        return _first(attrs, (mapped,) if mapped else DEFAULTS.get(name, ()))

    name_id_value = (getattr(name_id, "text", None) or "").strip()
    user_id = field("user_id") if "user_id" in mapping else name_id_value
    if not user_id:
        raise refused("bad_profile", "assertion: no NameID and no mapped user_id attribute")
    groups_names = (mapping["groups"],) if "groups" in mapping else DEFAULTS["groups"]
    groups = [g for name in groups_names for g in attrs.get(name, [])]
    email = field("email")
    if not email and getattr(name_id, "format", None) == NAMEID_FORMAT_EMAILADDRESS:
        # Core §8.3.2: an emailAddress NameID is the address (samlify's default answer)
        email = name_id_value or None
    claims = {k: v for k in ("given_name", "family_name", "name") if (v := field(k))}
    if email:
        claims["email"] = email
    raw: dict[str, Any] = {
        **attrs,
        "name_id": name_id_value,
        "name_id_format": getattr(name_id, "format", None),
        "session_index": authn.get("session_index"),
        "authn_context": authn.get("class_ref"),
    }
    if groups:
        raw["groups"] = groups
    amr = [AMR[authn["class_ref"]]] if authn.get("class_ref") in AMR else []
    return UpstreamProfile(
        user_id=user_id, email=email, email_verified=bool(email and options.get("email_verified")),
        claims=claims, raw=raw, amr=amr,
    )  # fmt: skip
