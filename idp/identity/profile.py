"""The OIDC standard claims a user carries (OIDC Core §5.1), their validation, and which scope
releases which (§5.4).

Storage: ``name`` keeps the column it always had and ``updated_at`` is the user's
``updated_at`` column; every other standard claim lives in one JSON column, ``users.profile``.
One column keeps the login hot path's read of a user one row of the same shape whatever claims
a user has (``idp.stores.sql`` maps columns generically), a claim that is absent takes no
space and needs no NULL, and a claim added later (or a connection's mapping) needs no
migration. Nothing queries users by these claims, so they need no index of their own.

The validation lives here, not in a command, so that the CLI and the management API share it.
"""

from __future__ import annotations

import datetime
import functools
import re
import zoneinfo
from typing import Any
from urllib.parse import urlsplit

from idp.core import clock
from idp.core.errors import ValidationError
from idp.identity.models import User

# OIDC Core §5.4: what each scope releases, in the spec's order.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
        "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}  # fmt: skip
# Every claim those scopes release (discovery's claims_supported lists them).
STANDARD_CLAIMS: tuple[str, ...] = tuple(c for claims in SCOPE_CLAIMS.values() for c in claims)
# The claims an operator (or later a connection) sets; email has its own life (verification).
EDITABLE: tuple[str, ...] = tuple(
    c for c in STANDARD_CLAIMS if c not in ("email", "email_verified", "updated_at")
)
# OIDC Core §5.1.1.
ADDRESS_KEYS = ("formatted", "street_address", "locality", "region", "postal_code", "country")

_URL_CLAIMS = ("profile", "picture", "website")
_MAX_TEXT = 255
_MAX_URL = 2048
_BIRTHDATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})-([0-9]{2}))?$")
_LOCALE = re.compile(r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Control characters; §5.1.1 allows line breaks in formatted and street_address only.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINES = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def standard_claims(user: User) -> dict[str, Any]:
    """The standard claims ``user`` has, absent ones left out (never ``null``), ``sub`` not
    included. ``updated_at`` is always there: every user has one."""
    claims: dict[str, Any] = {"email": user.email, "email_verified": bool(user.email_verified)}
    if user.name:
        claims["name"] = user.name
    stored = user.profile or {}
    for claim in EDITABLE:
        if claim != "name" and stored.get(claim) is not None:
            claims[claim] = stored[claim]
    claims["updated_at"] = user.updated_at
    return claims


def released(user: User, scopes: set[str]) -> dict[str, Any]:
    """The standard claims the granted ``scopes`` release (OIDC Core §5.4), present ones only."""
    have = standard_claims(user)
    return {
        claim: have[claim]
        for scope in SCOPE_CLAIMS
        if scope in scopes
        for claim in SCOPE_CLAIMS[scope]
        if claim in have
    }


def update_profile(user: User, changes: dict[str, Any]) -> bool:
    """Apply ``changes`` (claim -> value; ``None`` or ``""`` removes the claim) after
    validating all of them (nothing is applied if one is refused). ``updated_at`` moves only
    when a claim really changed; returns whether one did.

    A new phone number is not verified unless the same change says so, and a user without a
    phone number has no ``phone_number_verified``."""
    clean = validate(changes)
    original = {k: v for k, v in (user.profile or {}).items() if k in EDITABLE}
    stored, name = dict(original), user.name
    for claim, value in clean.items():
        if claim == "name":
            name = value
        elif value is None:
            stored.pop(claim, None)
        else:
            stored[claim] = value
    if "phone_number" not in stored:
        if clean.get("phone_number_verified") is not None:
            raise ValidationError("phone_number_verified needs a phone_number")
        stored.pop("phone_number_verified", None)
    elif clean.get("phone_number_verified") is None and (
        stored["phone_number"] != original.get("phone_number")
        or "phone_number_verified" not in stored
    ):
        stored["phone_number_verified"] = False
    if name == user.name and stored == original:
        return False
    user.name = name
    user.profile = stored  # a new dict: the ORM sees the JSON column change
    user.updated_at = clock.now()
    return True


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Each change checked and normalised (OIDC Core §5.1); a refusal is a one-line
    :class:`ValidationError` naming the claim. ``None`` or ``""`` stands for "remove"."""
    clean: dict[str, Any] = {}
    for claim, value in changes.items():
        if claim not in EDITABLE:
            raise ValidationError(f"{claim!r} is not a standard claim an operator can set")
        if value is None or value == "" or value == {}:
            clean[claim] = None
        elif claim == "phone_number_verified":
            if not isinstance(value, bool):
                raise ValidationError("phone_number_verified must be true or false")
            clean[claim] = value
        elif claim == "address":
            clean[claim] = _address(value)
        else:
            clean[claim] = _CHECKS.get(claim, _text)(claim, value)
    return clean


def _text(claim: str, value: Any, limit: int = _MAX_TEXT, newlines: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{claim} must be a string")
    value = value.strip()
    if not value:
        raise ValidationError(f"{claim} must not be blank")
    if len(value) > limit:
        raise ValidationError(f"{claim} is longer than {limit} characters")
    if (_CONTROL_BUT_NEWLINES if newlines else _CONTROL).search(value):
        raise ValidationError(f"{claim} must not contain control characters")
    return value


def _url(claim: str, value: Any) -> str:
    value = _text(claim, value, _MAX_URL)
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ValidationError(f"{claim} must be an http(s) URL: {value!r}")
    return value


def _birthdate(claim: str, value: Any) -> str:
    """§5.1: ``YYYY-MM-DD``, year ``0000`` meaning "year omitted", or ``YYYY`` alone."""
    value = _text(claim, value)
    found = _BIRTHDATE.match(value)
    problem = f"birthdate must be YYYY-MM-DD or YYYY (OIDC Core §5.1): {value!r}"
    if found is None:
        raise ValidationError(problem)
    year, month, day = found.groups()
    if month is None:
        if year == "0000":
            raise ValidationError(problem)
        return value
    try:  # year 0000 has no calendar: check the day against a leap year (29 February is fine)
        datetime.date(int(year) or 2000, int(month), int(day))
    except ValueError:
        raise ValidationError(problem) from None
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zoneinfo(claim: str, value: Any) -> str:
    value = _text(claim, value)
    if value not in _zones():
        raise ValidationError(f"zoneinfo must be an IANA time zone such as Europe/Paris: {value!r}")
    return value


def _locale(claim: str, value: Any) -> str:
    value = _text(claim, value)
    if not _LOCALE.match(value):
        raise ValidationError(f"locale must be a BCP 47 language tag such as en-US: {value!r}")
    return value


def _phone(claim: str, value: Any) -> str:
    value = _text(claim, value)
    if not _E164.match(value):
        raise ValidationError(
            f"phone_number must be E.164, a + and 7 to 15 digits, such as +14155550100: {value!r}"
        )
    return value


def _address(value: Any) -> dict[str, str] | None:
    """§5.1.1: a JSON object of the listed members, each a string."""
    if not isinstance(value, dict):
        raise ValidationError("address must be a JSON object")
    unknown = sorted(set(value) - set(ADDRESS_KEYS))
    if unknown:
        raise ValidationError(
            f"address has unknown member(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(ADDRESS_KEYS)}"
        )
    clean = {}
    for key in ADDRESS_KEYS:
        if value.get(key) not in (None, ""):
            newlines = key in ("formatted", "street_address")
            clean[key] = _text(f"address.{key}", value[key], newlines=newlines)
    return clean or None


_CHECKS = {
    **dict.fromkeys(_URL_CLAIMS, _url),
    "birthdate": _birthdate,
    "zoneinfo": _zoneinfo,
    "locale": _locale,
    "phone_number": _phone,
}
