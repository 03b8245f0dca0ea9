"""The trigger table (ARCHITECTURE.md §7, issue 4): what runs where, and what each ``api`` offers.

Everything about a trigger is declared here as data: its entry points, whether it blocks the
flow, which ``api`` methods exist, which ``event`` fields it carries and a sample event. The
sandbox builds ``api`` from ``methods``; the host accepts only commands named here
(``commands.py``); the published schema and the test runner read the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CACHE = ("cache.get", "cache.set", "cache.delete")

# The trigger ids, for callers (``idp.actions.chains.run(POST_LOGIN, ...)``).
POST_LOGIN = "post-login"
CREDENTIALS_EXCHANGE = "credentials-exchange"
PRE_USER_REGISTRATION = "pre-user-registration"
POST_USER_REGISTRATION = "post-user-registration"
POST_CHANGE_PASSWORD = "post-change-password"  # noqa: S105 - a trigger id
SEND_PHONE_MESSAGE = "send-phone-message"
CUSTOM_TOKEN_EXCHANGE = "custom-token-exchange"  # noqa: S105 - a trigger id


@dataclass(frozen=True)
class Trigger:
    id: str
    blocking: bool
    methods: tuple[str, ...]
    event_fields: tuple[str, ...]
    description: str
    # Some triggers never fail open: an error there is always a refusal (ARCHITECTURE.md §11).
    always_fail_closed: bool = False
    continue_entry: bool = False
    sample: dict[str, Any] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        return "on_execute_" + self.id.replace("-", "_")


_USER = {
    "user_id": "usr_0d1f2e3c4b5a",
    "email": "jane@example.com",
    "email_verified": True,
    "name": "Jane Doe",
    "app_metadata": {"plan": "pro"},
    "user_metadata": {"locale": "fr"},
    "identities": [
        {
            "provider": "database",
            "connection": "database",
            "user_id": "usr_0d1f2e3c4b5a",
            "isSocial": False,
        },
        {
            "provider": "google",
            "connection": "google",
            "user_id": "104220001234567890123",
            "isSocial": True,
        },
    ],
    "created_at": "2026-01-02T03:04:05Z",
    "logins_count": 7,
}
_REQUEST = {
    "ip": "192.0.2.10",
    "user_agent": "Mozilla/5.0",
    "hostname": "login.example.com",
    "method": "GET",
    "query": {},
    "body": {},
    "geoip": {
        "country_code": "FR",
        "continent_code": "EU",
        "city_name": "Paris",
        "latitude": 48.85,
        "longitude": 2.35,
        "time_zone": "Europe/Paris",
    },
}
_CLIENT = {"client_id": "app-1", "name": "My App", "metadata": {}}
_CONNECTION = {"id": "con_database", "name": "database", "strategy": "database"}
_API = {"identifier": "https://api.example.com", "name": "Example API"}

TRIGGERS: dict[str, Trigger] = {
    t.id: t
    for t in (
        Trigger(
            id=POST_LOGIN,
            blocking=True,
            continue_entry=True,
            description="After authentication (and MFA), before a code or token is issued; "
            "also on refresh (non-interactive: redirects there fail with interaction_required).",
            methods=(
                "access.deny",
                "id_token.set_custom_claim",
                "access_token.set_custom_claim",
                "access_token.add_scope",
                "access_token.remove_scope",
                "multifactor.enable",
                "authentication.challenge_with",
                "authentication.enroll_with",
                "user.set_app_metadata",
                "user.set_user_metadata",
                "redirect.send_user_to",
                *CACHE,
            ),
            event_fields=(
                "user",
                "client",
                "connection",
                "request",
                "transaction",
                "authentication",
                "resource_server",
                "session",
                "secrets",
                "configuration",
                "stats",
            ),
            sample={
                "user": _USER,
                "client": _CLIENT,
                "connection": _CONNECTION,
                "request": _REQUEST,
                "transaction": {
                    "requested_scopes": ["openid", "profile", "email"],
                    "protocol": "oidc-basic-profile",
                    "redirect_uri": "https://app.example.com/callback",
                    "acr_values": [],
                    "id": "txn_1",
                },
                "authentication": {"methods": [{"name": "pwd", "timestamp": 1795000000}]},
                "resource_server": _API,
                "session": {"id": "sid_1"},
                "stats": {"logins_count": 7},
            },
        ),
        Trigger(
            id=CREDENTIALS_EXCHANGE,
            blocking=True,
            always_fail_closed=True,
            description="In the token endpoint for client_credentials, after client "
            "authentication and the client-grant check.",
            methods=("access.deny", "access_token.set_custom_claim", *CACHE),
            event_fields=(
                "client",
                "request",
                "resource_server",
                "transaction",
                "secrets",
                "configuration",
            ),
            sample={
                "client": _CLIENT,
                "request": {k: v for k, v in _REQUEST.items() if k not in {"query"}},
                "resource_server": _API,
                "transaction": {"requested_scopes": ["read:things"]},
            },
        ),
        Trigger(
            id=PRE_USER_REGISTRATION,
            blocking=True,
            always_fail_closed=True,
            description="Before a database user is written.",
            methods=(
                "access.deny",
                "user.set_app_metadata",
                "user.set_user_metadata",
                "validation.error",
                *CACHE,
            ),
            event_fields=(
                "user",
                "client",
                "connection",
                "request",
                "secrets",
                "configuration",
            ),
            sample={
                "user": {"email": "new@example.com", "user_metadata": {}, "app_metadata": {}},
                "client": _CLIENT,
                "connection": _CONNECTION,
                "request": _REQUEST,
            },
        ),
        Trigger(
            id=POST_USER_REGISTRATION,
            blocking=False,
            description="After the user is committed, asynchronously.",
            methods=CACHE,
            event_fields=("user", "client", "connection", "request", "secrets", "configuration"),
            sample={
                "user": _USER,
                "client": _CLIENT,
                "connection": _CONNECTION,
                "request": _REQUEST,
            },
        ),
        Trigger(
            id=POST_CHANGE_PASSWORD,
            blocking=False,
            description="After a password change is committed, asynchronously.",
            methods=CACHE,
            event_fields=("user", "connection", "request", "secrets", "configuration"),
            sample={"user": _USER, "connection": _CONNECTION, "request": _REQUEST},
        ),
        Trigger(
            id=SEND_PHONE_MESSAGE,
            blocking=True,
            always_fail_closed=True,
            description="When an SMS or voice code must go out (MFA); deliver it with api.http.",
            methods=CACHE,
            event_fields=(
                "user",
                "client",
                "request",
                "message_options",
                "secrets",
                "configuration",
            ),
            sample={
                "user": _USER,
                "client": _CLIENT,
                "request": _REQUEST,
                "message_options": {
                    "message_type": "sms",
                    "recipient": "+33600000000",
                    "text": "Your code is 123456",
                    "code": "123456",
                    "action": "second-factor-authentication",
                    "language": "en",
                },
            },
        ),
        Trigger(
            id=CUSTOM_TOKEN_EXCHANGE,
            blocking=True,
            always_fail_closed=True,
            description="In the token endpoint for the token-exchange grant (RFC 8693), after "
            "client authentication: validate event.transaction.subject_token, then "
            "api.authentication.set_user_by_id(...) or refuse. subject_token_claims holds the "
            "verified claims when the subject token is an access token of idp itself, and "
            "subject_token_user_id the user behind it.",
            methods=(
                "access.deny",
                "access.reject_invalid_subject_token",
                "authentication.set_user_by_id",
                "access_token.set_custom_claim",
                *CACHE,
            ),
            event_fields=(
                "client",
                "request",
                "resource_server",
                "transaction",
                "secrets",
                "configuration",
            ),
            sample={
                "client": _CLIENT,
                "request": {k: v for k, v in _REQUEST.items() if k not in {"query"}},
                "resource_server": _API,
                "transaction": {
                    "subject_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.c2ln",
                    "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "subject_token_claims": {
                        "iss": "https://login.example.com",
                        "sub": "usr_0d1f2e3c4b5a",
                        "aud": "https://orders.example.com",
                        "client_id": "app-1",
                        "scope": "read:orders",
                        "exp": 1795003600,
                        "iat": 1795000000,
                        "jti": "QmFzZTY0LWp0aQ",
                    },
                    "subject_token_user_id": "usr_0d1f2e3c4b5a",
                    "actor_token": None,
                    "actor_token_type": None,
                    "actor_token_claims": None,
                    "requested_scopes": ["read:things"],
                    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                },
            },
        ),
    )
}


def get(trigger_id: str) -> Trigger:
    try:
        return TRIGGERS[trigger_id]
    except KeyError:
        raise ValueError(f"unknown trigger {trigger_id!r}; one of: {', '.join(TRIGGERS)}") from None


def schema(trigger: Trigger) -> dict[str, Any]:
    """The published shape of a trigger, for editors and local tests (issue 4)."""
    return {
        "id": trigger.id,
        "description": trigger.description,
        "blocking": trigger.blocking,
        "entry_points": [trigger.entry]
        + (["on_continue_post_login"] if trigger.continue_entry else []),
        "event": {"fields": list(trigger.event_fields), "sample": trigger.sample},
        "api": sorted(
            {*trigger.methods, "http.get", "http.post", "http.put", "http.patch", "http.delete"}
            | (
                {"redirect.can_redirect", "redirect.encode_token", "redirect.validate_token"}
                if trigger.continue_entry
                else set()
            )
        ),
    }
