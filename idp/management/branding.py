"""``/api/v2/branding``: the hosted pages' look, as Auth0 Management API v2's branding
(``GET``/``PATCH /branding``; ``read:branding``, ``update:branding``).

What idp's pages have: ``colors.primary`` (the accent of buttons and the brand mark, with the
button text chosen for contrast) and ``logo_url``. ``logo_url`` must be https: its host joins
the pages' CSP ``img-src``, which follows the setting (``idp.tenant.branding``); ``null``
removes the logo (the brand name shows instead). Auth0's ``colors.page_background``,
``favicon_url`` and ``font`` have nothing to drive in idp's pages and are refused (400 naming
them) rather than silently dropped. The brand's name is ``friendly_name`` in
``/api/v2/tenants/settings``.

Stored as tenant settings (``BRAND_PRIMARY_COLOR``, ``BRAND_LOGO_URL``) over the
configuration's values; every worker follows within ``TENANT_SETTINGS_CACHE_SECONDS``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from idp.extensions import db
from idp.management.registry import Item, route
from idp.management.validation import Body, Out
from idp.tenant.branding import HTTPS_LOGO
from idp.tenant.settings import Snapshot, tenant

TAG = "branding"


def _color(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValueError("a colour is #rrggbb, for example #2457c5")
    return value


def _logo(value: str) -> str:
    if ".." in value or not HTTPS_LOGO.fullmatch(value):
        raise ValueError("logo_url must be an https URL (no quotes, spaces nor dot-dot segments)")
    return value


Color = Annotated[str, StringConstraints(max_length=7), AfterValidator(_color)]
LogoUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_logo)]


# ---------------------------------------------------------------------------------- schemas
class ColorsOut(Out):
    primary: str = Field(description="Accent colour, #rrggbb.")


class BrandingOut(Out):
    colors: ColorsOut
    logo_url: str | None = Field(None, description="Absent: no logo, the name shows.")


class Colors(Body):
    primary: Color


class BrandingUpdate(Body):
    """Fields sent are changed; ``logo_url: null`` removes the logo."""

    colors: Colors | None = None
    logo_url: LogoUrl | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: colors, logo_url")
        return data


# ---------------------------------------------------------------------------------- helpers
def branding_json(snap: Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {"colors": {"primary": snap["BRAND_PRIMARY_COLOR"]}}
    if snap["BRAND_LOGO_URL"]:
        out["logo_url"] = snap["BRAND_LOGO_URL"]
    return out


def _invalidate() -> None:
    tenant().invalidate()  # this worker at once; the others within the cache's seconds


ITEM = Item(BrandingOut, lambda lock=False: branding_json(tenant().read(db.session, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/branding", scope="read:branding", tag=TAG, summary="Get branding settings",
       response=BrandingOut, item=ITEM)  # fmt: skip
def get_branding() -> dict[str, Any]:
    """The stored values, else the configuration's (``BRAND_*``)."""
    return branding_json(tenant().read(db.session))


@route("/branding", "PATCH", scope="update:branding", tag=TAG,
       summary="Update branding settings", body=BrandingUpdate, response=BrandingOut,
       item=ITEM, after_commit=_invalidate)  # fmt: skip
def update_branding(body: BrandingUpdate) -> dict[str, Any]:
    """Send ``If-Match`` with the ETag read to refuse (412) a write over someone else's."""
    values: dict[str, Any] = {}
    if body.colors is not None:
        values["BRAND_PRIMARY_COLOR"] = body.colors.primary
    if "logo_url" in body.model_fields_set:
        values["BRAND_LOGO_URL"] = body.logo_url or ""
    tenant().write(db.session, values)
    return branding_json(tenant().read(db.session))
