"""Tenant-wide settings (``/admin/settings``): branding with a preview of the login page,
tenant settings, attack protection, MFA factors, signing keys (rotate, revoke).

Every read and write is one management API operation (``api``): ``/branding`` and
``/tenants/settings`` (the brand's name and support address live there), the two
``/attack-protection`` resources, ``/guardian/factors`` and ``/keys/signing``. Edit forms carry
the ETag of each resource they were rendered from (``If-Match``; 412 is a page).

The branding preview is the real login template (``login.html``) rendered with the values being
edited, unsaved, at ``/admin/settings/branding/preview`` and shown in a sandboxed iframe of the
branding page. It is the one console response that may be framed, and only by idp's own origin
(``frame-ancestors 'self'``, ``X-Frame-Options: SAMEORIGIN``): framing is dangerous when a
hostile page can overlay a page whose clicks act (clickjacking); here the only framer allowed is
idp's own origin, whose pages run no script but idp's, the preview needs the console session (so
no one else can make idp's URL show a look-alike brand) and it acts on nothing: the iframe's
``sandbox`` blocks its forms and scripts, and its forms name no login transaction.
"""

from __future__ import annotations

import re
from typing import Any

from flask import make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from idp.console.internal import Answer
from idp.console.pages import api, bp, if_match, page, refused, signed_in, stale_or_refused
from idp.health import text_on
from idp.tenant.branding import HTTPS_LOGO, Brand, brand, csp

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
FACTOR_LABELS = {"sms": "SMS or voice call", "push-notification": "Push notification",
                 "email": "Email code", "otp": "Authenticator app (TOTP)",
                 "webauthn-roaming": "Security key (WebAuthn)",
                 "webauthn-platform": "Device biometrics (WebAuthn)",
                 "recovery-code": "Recovery code"}  # fmt: skip


def _text(name: str) -> str:
    return request.form.get(name, "").strip()


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def _number(name: str, kind: type = int) -> Any:
    """The field as a number, else as typed: the API's 400 then names the property."""
    raw = _text(name)
    try:
        return kind(raw)
    except ValueError:
        return raw


@bp.get("/settings")
@signed_in
def settings() -> Response:
    return page("console/settings.html")


# ---------------------------------------------------------------------------------- branding
def _branding_values(branding: dict[str, Any], tenant: dict[str, Any]) -> dict[str, str]:
    return {"name": tenant.get("friendly_name", ""), "logo_url": branding.get("logo_url") or "",
            "colour": branding.get("colors", {}).get("primary", ""),
            "support_email": tenant.get("support_email") or ""}  # fmt: skip


def _branding_page(values: dict[str, str], etags: dict[str, str], status: int = 200,
                   **context: Any) -> Response:  # fmt: skip
    preview = url_for("console.branding_preview", name=values["name"], colour=values["colour"],
                      logo=values["logo_url"])  # fmt: skip
    resp = page("console/settings_branding.html", status, form=values, etags=etags,
                preview=preview, **context)  # fmt: skip
    # this page frames the preview, from idp's own origin only (the CSP is otherwise the pages')
    resp.headers["Content-Security-Policy"] = brand().csp.replace(
        "frame-ancestors", "frame-src 'self'; frame-ancestors"
    )
    return resp


@bp.route("/settings/branding", methods=["GET", "POST"])
@signed_in
def branding() -> Response:
    current_branding, current_tenant = api("GET", "/branding"), api("GET", "/tenants/settings")
    if not (current_branding.ok and current_tenant.ok):
        return refused(current_branding.status, "Not available", current_branding.message)
    current = _branding_values(current_branding.data, current_tenant.data)
    now = {"branding": current_branding.etag or "", "tenant": current_tenant.etag or ""}
    if request.method == "GET":
        return _branding_page(current, now, saved=request.args.get("saved") == "1")
    values = {k: _text(k) for k in ("name", "logo_url", "colour", "support_email")}
    etags = {"branding": _text("etag_branding"), "tenant": _text("etag_tenant")}
    if "preview" in request.form:  # shows the values in the preview, saves nothing
        return _branding_page(values, etags, previewing=True)
    return _save_branding(values, etags, current, now)


def _save_branding(values: dict[str, str], etags: dict[str, str], current: dict[str, str],
                   current_etags: dict[str, str]) -> Response:  # fmt: skip
    """Only what differs from the API's current values is sent: a colour change is not a write
    of the tenant settings. The ETags are checked before either write (each write sends its
    If-Match too), so that a stale form changes neither."""
    branding_body: dict[str, Any] = {}
    if values["colour"] != current["colour"]:
        branding_body["colors"] = {"primary": values["colour"]}
    if values["logo_url"] != current["logo_url"]:
        branding_body["logo_url"] = values["logo_url"] or None
    tenant_body: dict[str, Any] = {}
    if values["name"] != current["name"]:
        tenant_body["friendly_name"] = values["name"]
    if values["support_email"] != current["support_email"]:
        tenant_body["support_email"] = values["support_email"] or None
    writes = [("/branding", "branding", branding_body),
              ("/tenants/settings", "tenant", tenant_body)]  # fmt: skip
    for _, key, body in writes:
        if body and etags[key] and etags[key] != current_etags[key]:
            return _stale()
    saved = False
    for path, key, body in writes:
        if not body:
            continue
        answer = api("PATCH", path, json_body=body, headers=_if_match(etags[key]))
        if (other := stale_or_refused(answer)) is not None:
            return other
        if not answer.ok:
            error = answer.message
            if saved:  # the form shows the values sent; the page says what is stored
                error = f"The logo and colour were saved, not the name and support email: {error}"
            return _branding_page(values, etags, 400, error=error)
        saved, etags[key] = True, answer.etag or ""
    return redirect("/admin/settings/branding?saved=1", code=303)


def _stale() -> Response:
    resp = stale_or_refused(Answer(412, None, None))  # the console's 412 page
    assert resp is not None
    return resp


def _if_match(etag: str) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


def _preview_brand() -> Brand:
    """The saved brand with the query's name, colour and logo where they are well-formed (the
    API checks them on saving; a preview shows what the login page could show)."""
    saved = brand()
    name = request.args.get("name", "").strip()
    colour = request.args.get("colour", "").strip()
    logo = request.args.get("logo", "").strip()
    if logo and (".." in logo or not HTTPS_LOGO.fullmatch(logo)):
        logo = ""
    name = name if name and len(name) <= 100 and "<" not in name else saved.name
    colour = colour if COLOUR.fullmatch(colour) else saved.primary_color
    return Brand(name, logo, colour, saved.support_email, csp(logo), saved.version)


@bp.get("/settings/branding/preview")
@signed_in
def branding_preview() -> Response:
    """The login page as it would look with these values; saves nothing."""
    shown = _preview_brand()

    def preview_url_for(endpoint: str, **values: Any) -> str:
        # base.html links the saved colour's /branding.css: link the previewed colour instead
        if endpoint == "health.branding_css":
            return url_for("console.branding_preview_css", colour=shown.primary_color)
        return url_for(endpoint, **values)

    html = render_template("login.html", brand=shown, url_for=preview_url_for, uid="preview",
                           email="", error=None, app_name="your application", buttons=[],
                           database=True, home_realms=False)  # fmt: skip
    resp = make_response(html)
    resp.headers["Cache-Control"] = "no-store"
    # framed by the console's branding page only (see the module's docstring)
    resp.headers["Content-Security-Policy"] = shown.csp.replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'; form-action 'none'"
    )
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    return resp


@bp.get("/settings/branding/preview.css")
def branding_preview_css() -> Response:
    """The previewed accent colour as the login page's /branding.css would serve it. Not behind
    the sign-in: the sandboxed preview fetches it without the console's cookie, and it reveals
    nothing (the CSS of the colour asked)."""
    colour = request.args.get("colour", "")
    colour = colour if COLOUR.fullmatch(colour) else brand().primary_color
    resp = make_response(f":root {{ --accent: {colour}; --accent-text: {text_on(colour)}; }}\n")
    resp.mimetype = "text/css"
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


# ---------------------------------------------------------------------------- tenant settings
@bp.route("/settings/tenant", methods=["GET", "POST"])
@signed_in
def tenant_settings() -> Response:
    if request.method == "POST":
        form = {"friendly_name": _text("friendly_name"),
                "support_email": _text("support_email") or None,
                "session_lifetime": _number("session_lifetime", float)}  # fmt: skip
        answer = api("PATCH", "/tenants/settings", json_body=form, headers=if_match())
        if (other := stale_or_refused(answer)) is not None:
            return other
        if answer.ok:
            return redirect("/admin/settings/tenant?saved=1", code=303)
        return page("console/settings_tenant.html", 400, form=form, etag=_text("etag"),
                    error=answer.message)  # fmt: skip
    answer = api("GET", "/tenants/settings")
    if not answer.ok:
        return refused(answer.status, "Not available", answer.message)
    return page("console/settings_tenant.html", form=answer.data, etag=answer.etag,
                saved=request.args.get("saved") == "1")  # fmt: skip


# -------------------------------------------------------------------------- attack protection
BRUTE_FORCE = "/attack-protection/brute-force-protection"
THROTTLING = "/attack-protection/suspicious-ip-throttling"


def _brute_force_body() -> dict[str, Any]:
    return {"enabled": request.form.get("enabled") == "on",
            "shields": [s for s in ("block", "user_notification") if request.form.get(s) == "on"],
            "allowlist": _lines("allowlist"), "max_attempts": _number("max_attempts")}  # fmt: skip


def _throttling_body() -> dict[str, Any]:
    stage = {name: {"max_attempts": _number(f"{name}-max_attempts"),
                    "rate": _number(f"{name}-rate")}
             for name in ("pre-login", "pre-user-registration")}  # fmt: skip
    return {"enabled": request.form.get("enabled") == "on",
            "shields": ["block"] if request.form.get("block") == "on" else [],
            "allowlist": _lines("allowlist"), "stage": stage}  # fmt: skip


def _protection_page(status: int = 200, edited: str = "", error: str | None = None,
                     **sent: Any) -> Response:  # fmt: skip
    """Both forms; the one ``edited`` (refused) keeps the values sent, with the API's reason."""
    shown: dict[str, Any] = {}
    for key, path in (("brute_force", BRUTE_FORCE), ("throttling", THROTTLING)):
        if key == edited:
            shown[key] = {"form": sent["form"], "etag": _text("etag"), "error": error}
            continue
        answer = api("GET", path)
        if not answer.ok:
            return refused(answer.status, "Not available", answer.message)
        shown[key] = {"form": answer.data, "etag": answer.etag, "error": None}
    return page("console/settings_protection.html", status, saved=request.args.get("saved"),
                **shown)  # fmt: skip


@bp.get("/settings/attack-protection")
@signed_in
def attack_protection() -> Response:
    return _protection_page()


@bp.post("/settings/attack-protection/<which>")
@signed_in
def save_attack_protection(which: str) -> Response:
    if which not in ("brute-force-protection", "suspicious-ip-throttling"):
        return refused(404, "Not found", "There is no such setting.")
    key, body = (("brute_force", _brute_force_body()) if which == "brute-force-protection"
                 else ("throttling", _throttling_body()))  # fmt: skip
    answer = api("PATCH", f"/attack-protection/{which}", json_body=body, headers=if_match())
    if (other := stale_or_refused(answer)) is not None:
        return other
    if answer.ok:
        return redirect(f"/admin/settings/attack-protection?saved={key}", code=303)
    return _protection_page(400, key, answer.message, form=body)


# -------------------------------------------------------------------------------- MFA factors
@bp.get("/settings/mfa")
@signed_in
def factors() -> Response:
    answer = api("GET", "/guardian/factors")
    if not answer.ok:
        return refused(answer.status, "Not available", answer.message)
    return page("console/settings_factors.html", factors=answer.data, labels=FACTOR_LABELS,
                saved=request.args.get("saved"))  # fmt: skip


@bp.post("/settings/mfa/<name>")
@signed_in
def switch_factor(name: str) -> Response:
    enabled = request.form.get("enabled") == "true"
    answer = api("PUT", f"/guardian/factors/{name}", json_body={"enabled": enabled})
    if (other := stale_or_refused(answer)) is not None:
        return other
    if not answer.ok:
        return refused(answer.status, "Not switched", answer.message)
    return redirect(f"/admin/settings/mfa?saved={name}", code=303)


# ------------------------------------------------------------------------------- signing keys
@bp.get("/settings/keys")
@signed_in
def signing_keys() -> Response:
    answer = api("GET", "/keys/signing")
    if not answer.ok:
        return refused(answer.status, "Not available", answer.message)
    keys = sorted(answer.data, key=lambda k: k["current_since"] or "", reverse=True)
    return page("console/settings_keys.html", keys=keys, done=request.args.get("done"))


@bp.route("/settings/keys/rotate", methods=["GET", "POST"])
@signed_in
def rotate_key() -> Response:
    if request.method == "GET":  # the confirmation
        return page("console/settings_key_confirm.html", action="rotate", key=None)
    answer = api("POST", "/keys/signing/rotate")
    if not answer.ok:
        return refused(answer.status, "Not rotated", answer.message)
    return redirect(f"/admin/settings/keys?done=rotated&kid={answer.data['kid']}", code=303)


@bp.route("/settings/keys/<kid>/revoke", methods=["GET", "POST"])
@signed_in
def revoke_key(kid: str) -> Response:
    if request.method == "POST":
        answer = api("PUT", f"/keys/signing/{kid}/revoke", headers=if_match())
        if (other := stale_or_refused(answer)) is not None:
            return other
        if not answer.ok:  # 409: the current key
            return refused(answer.status, "Not revoked", answer.message)
        return redirect(f"/admin/settings/keys?done=revoked&kid={kid}", code=303)
    answer = api("GET", f"/keys/signing/{kid}")
    if (other := stale_or_refused(answer)) is not None:
        return other
    return page("console/settings_key_confirm.html", action="revoke", key=answer.data,
                etag=answer.etag)  # fmt: skip
