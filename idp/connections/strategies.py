"""The strategies a connection may have, and their options, as data.

A strategy is one of three protocols: ``database`` (idp's own users), ``oidc`` (any OpenID
provider, by its issuer: OIDC Core 1.0 with Discovery) and ``oauth2`` (RFC 6749 providers
without OIDC, by URLs and a mapping of their profile JSON). A *preset* (``google``,
``github``...) is only options filled in for one of those protocols: it adds no code path, so
each is tested by pointing its endpoints at a local upstream.

Secret options (``client_secret``, ``private_key``) are sealed with the instance's
:class:`~idp.core.crypto.SecretBox` before they are stored and never leave in a listing
(:func:`public_options`); :func:`unseal` opens them for the one request that needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from idp.core.crypto import SecretBox
from idp.core.errors import ValidationError

DATABASE, OIDC, OAUTH2, SAMLP = "database", "oidc", "oauth2", "samlp"
SECRET_OPTIONS = ("client_secret", "private_key", "sp_private_key", "sp_previous_private_key")
SEALED = "$sealed"  # a sealed secret is stored as {"$sealed": "<fernet token>"}
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
# Profile fields an oauth2 mapping may fill (dotted paths into the profile JSON).
MAPPED_FIELDS = (
    "user_id", "email", "email_verified", "name", "given_name", "family_name", "nickname",
    "picture", "locale",
)  # fmt: skip


@dataclass(frozen=True)
class Option:
    kind: str  # str | url | bool | list | map | secret | xml
    help: str
    required: bool = False


COMMON: dict[str, Option] = {
    "client_id": Option("str", "The client id idp has at the upstream.", required=True),
    "client_secret": Option("secret", "The client secret (write-only)."),
    "scopes": Option("list", "Scopes asked of the upstream."),
    "token_endpoint_auth_method": Option("str", "How idp authenticates at the token endpoint."),
    "private_key": Option("secret", "PEM key for private_key_jwt / Apple's client secret."),
    "key_id": Option("str", "kid of private_key (private_key_jwt, Apple)."),
    "team_id": Option("str", "Apple: the team id that signs the client secret."),
    "icon_url": Option("url", "Icon shown on the login button."),
    "trust_email_verified": Option("bool", "Auto-link to a user when both sides verified it."),
    "keep_tokens": Option("bool", "Keep the upstream tokens (encrypted) on the identity."),
    "authorization_params": Option("map", "Extra parameters sent to the upstream's authorize."),
}
OPTIONS: dict[str, dict[str, Option]] = {
    DATABASE: {},
    OIDC: {
        **COMMON,
        "issuer": Option("url", "The upstream's issuer (discovery at /.well-known/...).", True),
        "userinfo": Option("bool", "Merge the upstream's userinfo into the profile."),
        "domain_hint": Option("str", "Enterprise: sent as domain_hint / hd."),
        "response_mode": Option("str", "query (default) or form_post (Apple)."),
    },
    OAUTH2: {
        **COMMON,
        "authorization_url": Option("url", "The upstream's authorization endpoint.", True),
        "token_url": Option("url", "The upstream's token endpoint.", True),
        "profile_url": Option("url", "GET with the access token: the profile JSON.", True),
        "emails_url": Option("url", "GET: a list of emails; the verified primary is kept."),
        "map": Option("map", "Profile fields from dotted paths: user_id=id email=email ..."),
    },
    # A SAML identity provider behind idp, its service provider (idp.connections.saml).
    SAMLP: {
        "metadata_url": Option("url", "The IdP's metadata (fetched through the SSRF guard)."),
        "metadata_xml": Option("xml", "The IdP's metadata itself (instead of a URL)."),
        "idp_certificates": Option(
            "list", "SHA-256 fingerprints of the IdP signing certificates the operator confirmed."
        ),
        "domains": Option("list", "Email domains sent to this IdP from the login page (HRD)."),
        "sign_requests": Option("bool", "Sign AuthnRequests with the SP key."),
        "request_binding": Option("str", "redirect (default) or post."),
        "allow_sha1": Option("bool", "Accept SHA-1 signatures from this IdP (legacy ADFS)."),
        "idp_initiated": Option("bool", "Accept IdP-initiated SSO (off by default)."),
        "default_client_id": Option("str", "IdP-initiated SSO: the app the user is sent to."),
        "map": Option("map", "Profile fields from SAML attribute names: email=ATTR ..."),
        "email_verified": Option("bool", "The IdP is authoritative for its users' emails."),
        "sp_private_key": Option("secret", "The SP's signing/decryption key (generated)."),
        "sp_certificate": Option("str", "The SP's certificate (generated with the key)."),
        # The pair before the last rotate-certificate (idp.connections.samlp), one generation.
        "sp_previous_private_key": Option("secret", "The SP's key before the last rotation."),
        "sp_previous_certificate": Option("str", "The SP's certificate before the last rotation."),
        "icon_url": COMMON["icon_url"],
        "keep_tokens": Option("bool", "Unused by SAML (no upstream tokens)."),
        "trust_email_verified": COMMON["trust_email_verified"],
    },
}

# Presets: (protocol, options filled in). An operator's options override them (endpoints
# included, which is how the tests point a preset at a local upstream).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "google": (OIDC, {"issuer": "https://accounts.google.com",
                      "scopes": ["openid", "profile", "email"]}),
    "microsoft": (OIDC, {"issuer": "https://login.microsoftonline.com/consumers/v2.0",
                         "scopes": ["openid", "profile", "email"]}),
    "apple": (OIDC, {"issuer": "https://appleid.apple.com", "scopes": ["openid", "name", "email"],
                     "response_mode": "form_post", "userinfo": False}),
    "gitlab": (OIDC, {"issuer": "https://gitlab.com", "scopes": ["openid", "profile", "email"]}),
    "linkedin": (OIDC, {"issuer": "https://www.linkedin.com/oauth",
                        "scopes": ["openid", "profile", "email"]}),
    "github": (OAUTH2, {
        "authorization_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "profile_url": "https://api.github.com/user",
        "emails_url": "https://api.github.com/user/emails",
        "scopes": ["read:user", "user:email"],
        "token_endpoint_auth_method": "client_secret_post",
        "map": {"user_id": "id", "name": "name", "nickname": "login", "picture": "avatar_url"},
    }),
    "facebook": (OAUTH2, {
        "authorization_url": "https://www.facebook.com/v19.0/dialog/oauth",
        "token_url": "https://graph.facebook.com/v19.0/oauth/access_token",
        "profile_url": "https://graph.facebook.com/me?fields=id,name,email,picture",
        "scopes": ["public_profile", "email"],
        "token_endpoint_auth_method": "client_secret_post",
        "map": {"user_id": "id", "name": "name", "email": "email",
                "picture": "picture.data.url"},
    }),
}  # fmt: skip
STRATEGIES: tuple[str, ...] = (DATABASE, OIDC, OAUTH2, SAMLP, *PRESETS)


def protocol(strategy: str) -> str:
    """The protocol a strategy speaks: ``database``, ``oidc`` or ``oauth2``."""
    if strategy in PRESETS:
        return PRESETS[strategy][0]
    if strategy in OPTIONS:
        return strategy
    raise ValidationError(f"strategy must be one of {', '.join(STRATEGIES)}")


def is_upstream(strategy: str) -> bool:
    """A connection whose users sign in elsewhere (oidc, oauth2, a preset, samlp)."""
    return protocol(strategy) != DATABASE


def is_social(strategy: str) -> bool:
    """Auth0's ``isSocial``: the social providers; database and enterprise (samlp) are not."""
    return protocol(strategy) not in (DATABASE, SAMLP)


def _check(name: str, option: Option, value: Any) -> Any:
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(f"option {name} must be true or false")
    elif option.kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValidationError(f"option {name} must be a list of strings")
    elif option.kind == "map":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValidationError(f"option {name} must map names to strings")
    elif option.kind == "xml":
        if not isinstance(value, str) or not value.lstrip().startswith("<") or len(value) > 512_000:
            raise ValidationError(f"option {name} must be an XML document (at most 500 KB)")
    elif not isinstance(value, str) or not value or len(value) > 8192:
        raise ValidationError(f"option {name} must be a non-empty string")
    elif option.kind == "url" and not _plain_url(value):
        raise ValidationError(f"option {name} must be an http(s) URL")
    if name == "icon_url" and not value.startswith("https://"):
        raise ValidationError("option icon_url must be an https URL (the login page's CSP)")
    return value


_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


def _plain_url(value: str) -> bool:
    """An absolute http(s) URL with a plain host (a name or an address, an optional port) and
    no credentials, spaces, quotes or angle brackets: an icon's host goes into the login
    page's Content-Security-Policy, where anything else could add directives."""
    if not value.startswith(("https://", "http://")) or re.search(r"[\s'\"<>\\]", value):
        return False
    netloc = urlsplit(value).netloc
    return bool(_HOST.match(netloc))


def validate_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of a connection of ``strategy``, the preset's filled in, checked; secrets
    still in clear (seal them before storing). Unknown options are refused."""
    kind = protocol(strategy)
    schema = OPTIONS[kind]
    merged = {**(PRESETS[strategy][1] if strategy in PRESETS else {}), **options}
    unknown = sorted(set(merged) - set(schema))
    if unknown:
        raise ValidationError(f"unknown option(s) for {strategy}: {', '.join(unknown)}")
    checked = {k: _check(k, schema[k], v) for k, v in merged.items() if v is not None}
    missing = sorted(k for k, o in schema.items() if o.required and k not in checked)
    if missing:
        raise ValidationError(f"{strategy} needs option(s): {', '.join(missing)}")
    method = checked.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ValidationError(f"token_endpoint_auth_method must be one of {AUTH_METHODS}")
    if kind != DATABASE and method == "private_key_jwt" and "private_key" not in checked:
        raise ValidationError("private_key_jwt needs the private_key option")
    if kind == OAUTH2 and "user_id" not in checked.get("map", {}):
        raise ValidationError("an oauth2 connection needs map user_id=<path>")
    if kind == SAMLP:
        _check_samlp(checked)
    if checked.get("response_mode", "query") not in ("query", "form_post"):
        raise ValidationError("response_mode must be query or form_post")
    return checked


def _check_samlp(checked: dict[str, Any]) -> None:
    if "metadata_url" not in checked and "metadata_xml" not in checked:
        raise ValidationError("a samlp connection needs metadata_url or metadata_xml")
    if checked.get("request_binding", "redirect") not in ("redirect", "post"):
        raise ValidationError("request_binding must be redirect or post")
    if checked.get("idp_initiated") and "default_client_id" not in checked:
        raise ValidationError("idp_initiated needs default_client_id (the app users go to)")
    for fingerprint in checked.get("idp_certificates", []):
        if not re.fullmatch(r"[0-9a-f]{64}", fingerprint.replace(":", "").lower()):
            raise ValidationError(f"not a SHA-256 fingerprint: {fingerprint!r}")


def seal(box: SecretBox, options: dict[str, Any]) -> dict[str, Any]:
    """Options as stored: each secret encrypted (Fernet: AES-CBC + HMAC, key from the
    instance secret, never in the database)."""
    return {
        k: ({SEALED: box.encrypt(v.encode()).decode()} if k in SECRET_OPTIONS and isinstance(
            v, str) else v)
        for k, v in options.items()
    }  # fmt: skip


def unseal(box: SecretBox, options: dict[str, Any]) -> dict[str, Any]:
    """Options with secrets opened, for the one upstream call that needs them."""
    return {
        k: (box.decrypt(v[SEALED].encode()).decode() if isinstance(v, dict) and SEALED in v
            else v)
        for k, v in options.items()
    }  # fmt: skip


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as listings show them: secrets are write-only (their names are kept, so an
    operator sees that one is set)."""
    return {k: ("(set)" if k in SECRET_OPTIONS else v) for k, v in options.items()}


def plain_https_host(url: str) -> str:
    """``host[:port]`` of a plain https URL (see :func:`_plain_url`), else ``""``: what the
    login page may name in its CSP's ``img-src``, re-checked there (options stored before
    this check existed are not trusted)."""
    if not url.startswith("https://") or not _plain_url(url):
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host
