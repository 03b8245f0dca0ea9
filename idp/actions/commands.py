"""Host-side validation of what an action asked for (ARCHITECTURE.md §11: "the host validates
every command"). Anything from the sandbox is untrusted, including a result line the action
forged itself, so each command is checked against the trigger's method list and a per-method
rule, sizes are capped, and reserved claims are refused.

Commands accumulate into :class:`Effects`, which the flow applies only after the whole chain has
succeeded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Claims an action can never set: they carry the protocol's own guarantees (RFC 7519 §4.1,
# OIDC Core §2 and §3.1.3.6, RFC 9068 §2.2, RFC 8693 §4, RFC 7800).
RESERVED_CLAIMS = frozenset(
    (
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "azp",
        "nonce",
        "auth_time",
        "at_hash",
        "c_hash",
        "s_hash",
        "sid",
        "cnf",
        "scope",
        "client_id",
        "acr",
        "amr",
        "act",
        "may_act",
        "gty",
        "typ",
    )
)
MAX_CLAIM_BYTES = 8 * 1024
MAX_CLAIMS_BYTES = 16 * 1024
MAX_METADATA_BYTES = 32 * 1024
DENY_CODES = {
    "invalid_request": 400,
    "invalid_scope": 400,
    "unauthorized_client": 400,
    "access_denied": 403,
}
MFA_FACTORS = {"any", "otp", "push-notification", "webauthn-roaming", "webauthn-platform",
               "phone", "email", "recovery-code", "none"}  # fmt: skip
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 §3.3 scope-token


class CommandError(ValueError):
    """An invalid command: the execution fails (fail closed), and the reason is logged."""


@dataclass
class Deny:
    reason: str
    user_message: str | None = None
    code: str = "access_denied"


@dataclass
class Effects:
    deny: Deny | None = None
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    access_token_claims: dict[str, Any] = field(default_factory=dict)
    add_scopes: list[str] = field(default_factory=list)
    remove_scopes: list[str] = field(default_factory=list)
    app_metadata: dict[str, Any] = field(default_factory=dict)
    user_metadata: dict[str, Any] = field(default_factory=dict)
    mfa: dict[str, Any] | None = None
    redirect: dict[str, Any] | None = None
    user_id: str | None = None  # custom-token-exchange: api.authentication.set_user_by_id

    def claims_size(self) -> int:
        return _size(self.id_token_claims) + _size(self.access_token_claims)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Effects:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(fields.get("deny"), dict):
            fields["deny"] = Deny(**fields["deny"])
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})} | (
            {"deny": self.deny.__dict__} if self.deny else {}
        )


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))  # JSON already (``_json_value``)


def _text(value: Any, what: str, limit: int = 500, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise CommandError(f"{what} must be a non-empty string")
    return value[:limit]


def _json_value(value: Any, what: str, limit: int) -> Any:
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError):
        raise CommandError(f"{what} must be JSON data") from None
    if size > limit:
        raise CommandError(f"{what} is larger than {limit} bytes")
    return value


def _claim(effects: Effects, target: dict[str, Any], args: list[Any]) -> None:
    if len(args) != 2:
        raise CommandError("set_custom_claim takes (name, value)")
    name, value = args
    if not isinstance(name, str) or not 0 < len(name) <= 256:
        raise CommandError("a claim name must be a string of 1-256 characters")
    if name in RESERVED_CLAIMS:
        raise CommandError(f"the claim {name!r} is reserved and cannot be set by an action")
    target[name] = _json_value(value, f"claim {name!r}", MAX_CLAIM_BYTES)
    if effects.claims_size() > MAX_CLAIMS_BYTES:
        raise CommandError(f"custom claims exceed {MAX_CLAIMS_BYTES} bytes in total")


def _metadata(effects: Effects, target: dict[str, Any], args: list[Any]) -> None:
    if len(args) != 2 or not isinstance(args[0], str) or not 0 < len(args[0]) <= 128:
        raise CommandError("set_*_metadata takes (key, value) with a key of 1-128 characters")
    target[args[0]] = _json_value(args[1], f"metadata {args[0]!r}", MAX_METADATA_BYTES)
    if _size(effects.app_metadata) + _size(effects.user_metadata) > 2 * MAX_METADATA_BYTES:
        raise CommandError("metadata updates are too large")


def _deny(trigger: str, args: list[Any], kwargs: dict[str, Any]) -> Deny:
    if trigger == "custom-token-exchange" and len(args) == 1:
        return Deny(reason=_text(args[0], "reason"))  # deny(reason): access_denied
    if trigger in {"credentials-exchange", "custom-token-exchange"}:
        # Auth0: api.access.deny(code, reason)
        if len(args) != 2 or args[0] not in DENY_CODES:
            raise CommandError(f"access.deny takes (code, reason); code one of {list(DENY_CODES)}")
        return Deny(reason=_text(args[1], "reason"), code=args[0])
    if trigger == "pre-user-registration":
        reason = _text(args[0] if args else None, "reason")
        message = args[1] if len(args) > 1 else kwargs.get("user_message")
        return Deny(reason=reason, user_message=_text(message, "user_message", required=False))
    return Deny(reason=_text(args[0] if args else None, "reason"))


def _mfa(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    provider = args[0] if args else "any"
    if provider not in MFA_FACTORS:
        raise CommandError(f"unknown MFA provider {provider!r}")
    options = args[1] if len(args) > 1 and isinstance(args[1], dict) else kwargs
    return {
        "provider": provider,
        "allow_remember_browser": bool(options.get("allow_remember_browser", False)),
    }


def _factors(args: list[Any]) -> list[str]:
    factors = args[0] if args else None
    if isinstance(factors, dict | str):
        factors = [factors]
    if not isinstance(factors, list) or not factors:
        raise CommandError("challenge_with/enroll_with take a factor or a list of factors")
    names = [f.get("type") if isinstance(f, dict) else f for f in factors]
    for name in names:
        if name not in MFA_FACTORS:
            raise CommandError(f"unknown factor {name!r}")
    return [str(n) for n in names]


def _redirect(args: list[Any], kwargs: dict[str, Any], interactive: bool) -> dict[str, Any]:
    if not interactive:
        raise CommandError("interaction_required: this login cannot be redirected")
    url = args[0] if args else None
    if not isinstance(url, str) or len(url) > 2048:
        raise CommandError("send_user_to takes a URL")
    parts = urlsplit(url)
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise CommandError("redirect URLs must be https")
    if parts.username or parts.password or not parts.hostname:
        raise CommandError("redirect URLs may not carry credentials")
    options = args[1] if len(args) > 1 and isinstance(args[1], dict) else kwargs
    query = options.get("query") or {}
    if not isinstance(query, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | bool) for k, v in query.items()
    ):
        raise CommandError("redirect query must map names to strings")
    return {"url": url, "query": {k: str(v) for k, v in query.items()}}


def _set_user(effects: Effects, args: list[Any]) -> None:
    """``api.authentication.set_user_by_id(user_id)``: the subject of a token exchange. That
    the user exists is the grant's to check; a second, different user is refused, so that no
    later action in the chain can swap the subject an earlier one vouched for."""
    if len(args) != 1 or not isinstance(args[0], str) or not 0 < len(args[0]) <= 64:
        raise CommandError("set_user_by_id takes a user id (a string of 1-64 characters)")
    if effects.user_id is not None and effects.user_id != args[0]:
        raise CommandError("set_user_by_id was already called with another user")
    effects.user_id = args[0]


Handler = Callable[[Effects, str, list[Any], dict[str, Any], bool], None]


def _set(attr: str, make: Callable[..., Any]) -> Handler:
    def apply(effects: Effects, trigger: str, a: list[Any], k: dict[str, Any], i: bool) -> None:
        setattr(effects, attr, make(trigger, a, k, i))

    return apply


HANDLERS: dict[str, Handler] = {
    "access.deny": _set("deny", lambda t, a, k, i: _deny(t, a, k)),
    "id_token.set_custom_claim": lambda e, t, a, k, i: _claim(e, e.id_token_claims, a),
    "access_token.set_custom_claim": lambda e, t, a, k, i: _claim(e, e.access_token_claims, a),
    "access_token.add_scope": lambda e, t, a, k, i: e.add_scopes.append(_scope(a)),
    "access_token.remove_scope": lambda e, t, a, k, i: e.remove_scopes.append(_scope(a)),
    "user.set_app_metadata": lambda e, t, a, k, i: _metadata(e, e.app_metadata, a),
    "user.set_user_metadata": lambda e, t, a, k, i: _metadata(e, e.user_metadata, a),
    "multifactor.enable": _set("mfa", lambda t, a, k, i: _mfa(a, k)),
    "authentication.challenge_with": _set(
        "mfa", lambda t, a, k, i: {"provider": "any", "challenge_with": _factors(a)}
    ),
    "authentication.enroll_with": _set(
        "mfa", lambda t, a, k, i: {"provider": "any", "enroll_with": _factors(a)}
    ),
    "redirect.send_user_to": _set("redirect", lambda t, a, k, i: _redirect(a, k, i)),
    "authentication.set_user_by_id": lambda e, t, a, k, i: _set_user(e, a),
    # RFC 8693 §2.2.2: an invalid subject token is answered invalid_request (as Auth0 does).
    "access.reject_invalid_subject_token": _set(
        "deny",
        lambda t, a, k, i: Deny(
            reason=_text(a[0] if a else None, "reason"), code="invalid_request"
        ),
    ),
    "validation.error": _set(
        "deny",
        lambda t, a, k, i: Deny(
            reason="validation error", user_message=_text(a[-1] if a else None, "message")
        ),
    ),
}


def _scope(args: list[Any]) -> str:
    if len(args) != 1 or not isinstance(args[0], str) or not _SCOPE.fullmatch(args[0]):
        raise CommandError("a scope is one scope-token (RFC 6749 §3.3)")
    return args[0]


def apply_commands(
    effects: Effects,
    trigger_id: str,
    allowed: tuple[str, ...],
    commands: list[dict[str, Any]],
    interactive: bool = True,
) -> None:
    """Validate untrusted ``commands`` into ``effects``; raise on the first bad one."""
    if len(commands) > 200:
        raise CommandError("too many commands")
    for command in commands:
        op = command.get("op")
        args = command.get("args", [])
        kwargs = command.get("kwargs", {})
        if not isinstance(op, str) or op not in allowed or op not in HANDLERS:
            raise CommandError(f"{op!r} is not available in {trigger_id}")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise CommandError(f"malformed arguments to {op}")
        HANDLERS[op](effects, trigger_id, args, kwargs, interactive)
        if effects.deny is not None:
            return
