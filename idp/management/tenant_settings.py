"""``/api/v2/tenants/settings``: the tenant's own settings, as Auth0 Management API v2's
tenant settings (``GET``/``PATCH /tenants/settings``; ``read:tenant_settings``,
``update:tenant_settings``). Only what idp has:

- ``friendly_name``: the brand name on the hosted pages (also the TOTP issuer and the
  WebAuthn relying party's name); ``BRAND_NAME``.
- ``support_email``: shown on idp's error pages; ``null`` removes it.
- ``session_lifetime``: hours a login session lasts (``SESSION_TTL``); it applies to the
  sessions started after the change (a session's end is fixed when it starts).
- ``flags``: the Auth0 flags that describe idp, all ``false`` and fixed: idp always sends its
  clickjacking headers (``disable_clickjack_protection_headers``), never tells a sign-up that
  the address exists (``enable_public_signup_user_exists_error``) and publishes ``alg`` in its
  JWKS (``remove_alg_from_jwks``). Sending ``true`` is a 400 naming the flag; any other flag
  is refused as unknown.

Refused with a 400 naming them, as any property idp does not have:
``idle_session_lifetime`` (idp's sessions have no idle timeout), ``default_redirection_uri``
(idp's pages that end without an application have no onward link), ``picture_url``,
``support_url``, ``enabled_locales`` and the rest of Auth0's tenant settings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from idp.extensions import db
from idp.management.registry import Item, route
from idp.management.validation import Body, Out
from idp.tenant.settings import Snapshot, tenant

TAG = "tenants"
HOUR = 3600


def _checked(pattern: str, message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


FriendlyName = Annotated[str, StringConstraints(min_length=1, max_length=100), _checked(
    r"[^\x00-\x1f<>]+", "friendly_name is printable text without '<' or '>'")]  # fmt: skip
"""It is also the TOTP issuer and the WebAuthn relying party's name."""
_ADDRESS = r"[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+"
Email = Annotated[str, StringConstraints(max_length=254),
                  _checked(_ADDRESS, "support_email is not an email address")]  # fmt: skip
"""An address for a mailto: link (its shape only: idp sends it nothing)."""
FLAGS = ("disable_clickjack_protection_headers", "enable_public_signup_user_exists_error",
         "remove_alg_from_jwks")  # fmt: skip


class FlagsOut(Out):
    disable_clickjack_protection_headers: bool
    enable_public_signup_user_exists_error: bool
    remove_alg_from_jwks: bool


class TenantOut(Out):
    friendly_name: str
    support_email: str | None = Field(None, description="Absent: none is shown.")
    session_lifetime: float = Field(description="Hours a login session lasts.")
    flags: FlagsOut


class Flags(Body):
    """idp's behaviour, fixed: only ``false`` is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True)
    disable_clickjack_protection_headers: Literal[False] | None = None
    enable_public_signup_user_exists_error: Literal[False] | None = None
    remove_alg_from_jwks: Literal[False] | None = None


class TenantUpdate(Body):
    """Fields sent are changed; ``support_email: null`` removes it."""

    friendly_name: FriendlyName | None = None
    support_email: Email | None = None
    session_lifetime: float | None = Field(None, ge=1 / 60, le=8760, description="Hours.")
    flags: Flags | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data


def tenant_json(snap: Snapshot) -> dict[str, Any]:
    hours = snap["SESSION_TTL"] / HOUR
    out: dict[str, Any] = {"friendly_name": snap["BRAND_NAME"],
                           "session_lifetime": int(hours) if hours.is_integer() else hours,
                           "flags": dict.fromkeys(FLAGS, False)}  # fmt: skip
    if snap["SUPPORT_EMAIL"]:
        out["support_email"] = snap["SUPPORT_EMAIL"]
    return out


def _invalidate() -> None:
    tenant().invalidate()  # this worker at once; the others within the cache's seconds


ITEM = Item(TenantOut, lambda lock=False: tenant_json(tenant().read(db.session, lock)))


@route("/tenants/settings", scope="read:tenant_settings", tag=TAG,
       summary="Get the tenant settings", response=TenantOut, item=ITEM)  # fmt: skip
def get_tenant_settings() -> dict[str, Any]:
    """Stored values, else the configuration's (``BRAND_NAME``, ``SESSION_TTL``)."""
    return tenant_json(tenant().read(db.session))


@route("/tenants/settings", "PATCH", scope="update:tenant_settings", tag=TAG,
       summary="Update the tenant settings", body=TenantUpdate, response=TenantOut, item=ITEM,
       after_commit=_invalidate)  # fmt: skip
def update_tenant_settings(body: TenantUpdate) -> dict[str, Any]:
    """Send ``If-Match`` with the ETag read to refuse (412) a write over someone else's."""
    values: dict[str, Any] = {}
    if body.friendly_name is not None:
        values["BRAND_NAME"] = body.friendly_name
    if "support_email" in body.model_fields_set:
        values["SUPPORT_EMAIL"] = body.support_email or ""
    if body.session_lifetime is not None:
        values["SESSION_TTL"] = max(60, round(body.session_lifetime * HOUR))
    tenant().write(db.session, values)
    return tenant_json(tenant().read(db.session))
