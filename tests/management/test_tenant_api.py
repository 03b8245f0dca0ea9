"""``/api/v2/branding`` and ``/api/v2/tenants/settings`` (issue 14): success, 400 naming the
property, 401, 403 naming the scope, 412 on a stale ``If-Match``, the tenant log; and the
running server follows a change at once (the brand on the pages, the logo host in the CSP, the
accent colour in branding.css)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.helpers import hidden_inputs, login_form_action
from tests.management.conftest import Mgmt
from tests.management.tenant_helpers import (
    check_scopes,
    defaults,
    login_page,
    no_values,
    problem,
    writes,
)

__all__ = ["defaults"]
pytestmark = pytest.mark.usefixtures("defaults")

LOGO = "https://cdn.brand.test/logo.png"


def test_branding_read_and_update(mgmt: Mgmt) -> None:
    got = mgmt.call("GET", "/branding")
    assert got.status_code == 200, got.text
    assert got.json() == {"colors": {"primary": "#2457c5"}}  # the configuration's default
    assert got.headers["ETag"].startswith('"')
    resp = mgmt.call("PATCH", "/branding", json={"colors": {"primary": "#FFCC00"},
                                                   "logo_url": LOGO})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"colors": {"primary": "#FFCC00"}, "logo_url": LOGO}
    assert mgmt.call("GET", "/branding").json() == resp.json()
    only = mgmt.call("PATCH", "/branding", json={"logo_url": None}).json()
    assert only == {"colors": {"primary": "#FFCC00"}}  # the logo removed, the colour kept


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send at least one of: colors, logo_url"),
        ({"logo_url": "http://cdn.brand.test/l.png"}, "must be an https URL (no quotes"),
        ({"logo_url": "https://x.test/a/../b.png"}, "on property logo_url."),
        ({"logo_url": 'https://x.test/"onload='}, "on property logo_url."),
        ({"logo_url": "/static/logo.png"}, "on property logo_url."),
        ({"colors": {"primary": "red"}}, "#rrggbb, for example #2457c5' on property colors.primary."),
        ({"colors": {"primary": 5}}, "found type integer' on property colors.primary."),
        ({"colors": {"primary": "#000000", "page_background": "#000000"}}, "Additional properties not allowed: page_background' on property colors."),
        ({"colors": {}}, "Missing required property: primary' on property colors."),
        ({"favicon_url": "https://x.test/f.ico"}, "Additional properties not allowed: favicon_url'."),
        ({"font": {"url": "https://x.test/f.woff"}}, "Additional properties not allowed: font'."),
    ],
)  # fmt: skip
def test_bad_branding_names_the_property(mgmt: Mgmt, body: dict[str, Any], message: str) -> None:
    problem(mgmt.call("PATCH", "/branding", json=body), 400, message, "invalid_body")
    assert mgmt.call("GET", "/branding").json() == {"colors": {"primary": "#2457c5"}}


def test_branding_if_match(mgmt: Mgmt) -> None:
    tag = mgmt.call("GET", "/branding").headers["ETag"]
    assert mgmt.call("GET", "/branding", headers={"If-None-Match": tag}).status_code == 304
    first = mgmt.call("PATCH", "/branding", json={"colors": {"primary": "#111111"}},
                      headers={"If-Match": tag})  # fmt: skip
    assert first.status_code == 200 and first.headers["ETag"] != tag
    second = mgmt.call("PATCH", "/branding", json={"colors": {"primary": "#222222"}},
                       headers={"If-Match": tag})  # fmt: skip
    problem(second, 412, "If-Match", "precondition_failed")
    assert mgmt.call("GET", "/branding").json()["colors"]["primary"] == "#111111"
    ok = mgmt.call("PATCH", "/branding", json={"colors": {"primary": "#333333"}},
                   headers={"If-Match": first.headers["ETag"]})  # fmt: skip
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("method", "scope", "body"),
    [("GET", "read:branding", None), ("PATCH", "update:branding", {"logo_url": LOGO})],
)
def test_branding_needs_a_token_and_its_scope(
    mgmt: Mgmt, op: Any, method: str, scope: str, body: Any
) -> None:
    check_scopes(mgmt, op, method, "/branding", scope, body)


def test_branding_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    before = len(writes(op, "branding"))
    mgmt.call("PATCH", "/branding", json={"logo_url": LOGO, "colors": {"primary": "#abcdef"}})
    mgmt.call("PATCH", "/branding", json={"logo_url": "ftp://nope"})  # refused: no event
    events = writes(op, "branding")[before:]
    assert [e.details["operation"] for e in events] == ["update_branding"]
    assert events[0].client_id == mgmt.client.client_id
    assert events[0].details["fields"] == ["colors", "logo_url"]
    no_values(events, "cdn.brand.test", "abcdef")


def test_the_pages_follow_the_branding_at_once(mgmt: Mgmt, op: Any) -> None:
    page = login_page(op)
    assert "cdn.brand.test" not in page.headers["Content-Security-Policy"]
    assert 'class="logo"' not in page.text
    mgmt.call("PATCH", "/branding", json={"logo_url": LOGO, "colors": {"primary": "#ffcc00"}})
    page = login_page(op)
    directives = dict(d.strip().partition(" ")[::2]
                      for d in page.headers["Content-Security-Policy"].split(";"))  # fmt: skip
    assert directives["img-src"] == "'self' data: https://cdn.brand.test"
    assert f'<img class="logo" src="{LOGO}"' in page.text
    css_url = page.text.split('rel="stylesheet" href="')[2].split('"')[0].replace("&amp;", "&")
    css = requests.get(op.url + css_url, timeout=30)
    # light accent: black text on the buttons; a new colour is a new URL (no stale copy)
    assert css.text == ":root { --accent: #ffcc00; --accent-text: #000000; }\n"
    assert "?v=" in css_url
    mgmt.call("PATCH", "/branding", json={"logo_url": None})
    page = login_page(op)
    assert "cdn.brand.test" not in page.headers["Content-Security-Policy"]
    assert 'class="logo"' not in page.text and "?v=" in page.text


# ------------------------------------------------------------------------ tenants/settings
TS = "/tenants/settings"
FLAGS = {"disable_clickjack_protection_headers": False,
         "enable_public_signup_user_exists_error": False, "remove_alg_from_jwks": False}  # fmt: skip
TS_DEFAULT = {"friendly_name": "idp", "session_lifetime": 168, "flags": FLAGS}


def test_tenant_settings_read_and_update(mgmt: Mgmt) -> None:
    got = mgmt.call("GET", TS)
    assert got.status_code == 200 and got.json() == TS_DEFAULT  # the configuration's values
    resp = mgmt.call("PATCH", TS, json={"friendly_name": "Acme Login", "session_lifetime": 1.5,
                                        "support_email": "help@acme.test", "flags": FLAGS})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"friendly_name": "Acme Login", "session_lifetime": 1.5,
                           "support_email": "help@acme.test", "flags": FLAGS}  # fmt: skip
    assert mgmt.call("GET", TS).json() == resp.json()
    resp = mgmt.call("PATCH", TS, json={"support_email": None, "session_lifetime": 24})
    assert resp.json() == {"friendly_name": "Acme Login", "session_lifetime": 24, "flags": FLAGS}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send at least one of: flags, friendly_name, session_lifetime, support_email"),
        ({"friendly_name": ""}, "String is too short (0 chars), minimum 1' on property friendly_name."),
        ({"friendly_name": "<b>Acme</b>"}, "without '<' or '>'' on property friendly_name."),
        ({"friendly_name": 5}, "found type integer' on property friendly_name."),
        ({"support_email": "nope"}, "not an email address' on property support_email."),
        ({"session_lifetime": 0}, "on property session_lifetime."),
        ({"session_lifetime": 9000}, "greater than maximum 8760"),
        ({"session_lifetime": "24"}, "on property session_lifetime."),
        ({"idle_session_lifetime": 72}, "Additional properties not allowed: idle_session_lifetime'."),
        ({"default_redirection_uri": "https://a.test/"}, "Additional properties not allowed: default_redirection_uri'."),
        ({"picture_url": "https://a.test/p.png"}, "Additional properties not allowed: picture_url'."),
        ({"flags": {"disable_clickjack_protection_headers": True}}, "on property flags.disable_clickjack_protection_headers."),
        ({"flags": {"enable_sso": True}}, "Additional properties not allowed: enable_sso' on property flags."),
    ],
)  # fmt: skip
def test_bad_tenant_settings_name_the_property(mgmt: Mgmt, body: Any, message: str) -> None:
    problem(mgmt.call("PATCH", TS, json=body), 400, message, "invalid_body")
    assert mgmt.call("GET", TS).json() == TS_DEFAULT


def test_tenant_settings_if_match(mgmt: Mgmt) -> None:
    tag = mgmt.call("GET", TS).headers["ETag"]
    first = mgmt.call("PATCH", TS, json={"friendly_name": "One"}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    stale = mgmt.call("PATCH", TS, json={"friendly_name": "Two"}, headers={"If-Match": tag})
    problem(stale, 412, "If-Match", "precondition_failed")
    assert mgmt.call("GET", TS).json()["friendly_name"] == "One"


@pytest.mark.parametrize(
    ("method", "scope", "body"),
    [("GET", "read:tenant_settings", None),
     ("PATCH", "update:tenant_settings", {"friendly_name": "Scoped"})],
)  # fmt: skip
def test_tenant_settings_need_a_token_and_their_scope(
    mgmt: Mgmt, op: Any, method: str, scope: str, body: Any
) -> None:
    check_scopes(mgmt, op, method, TS, scope, body)


def test_tenant_settings_writes_are_tenant_log_events(mgmt: Mgmt, op: Any) -> None:
    before = len(writes(op, "tenants"))
    mgmt.call("PATCH", TS, json={"friendly_name": "Logged Co", "support_email": "x@logged.test"})
    mgmt.call("PATCH", TS, json={"session_lifetime": -1})  # refused: no event
    events = writes(op, "tenants")[before:]
    assert [e.details["operation"] for e in events] == ["update_tenant_settings"]
    assert events[0].client_id == mgmt.client.client_id
    assert events[0].details["fields"] == ["friendly_name", "support_email"]
    no_values(events, "Logged Co", "logged.test")


def test_the_server_follows_the_tenant_settings(mgmt: Mgmt, op: Any) -> None:
    user = op.factory.gen_user()
    mgmt.call("PATCH", TS, json={"friendly_name": "Acme Login", "session_lifetime": 1,
                                 "support_email": "help@acme.test"})  # fmt: skip
    http = requests.Session()
    page = login_page(op, http)
    assert "<title>Sign in · Acme Login</title>" in page.text
    assert '<p class="brand">Acme Login</p>' in page.text
    fields = hidden_inputs(page.text) | {"email": user.email, "password": user.password}
    resp = http.post(op.url + str(login_form_action(page.text)), data=fields,
                     allow_redirects=False, timeout=30)  # fmt: skip
    cookie = next(v for k, v in resp.raw.headers.items()
                  if k.lower() == "set-cookie" and v.startswith("idp_session="))  # fmt: skip
    assert "Max-Age=3600" in cookie  # session_lifetime 1 hour
    error = requests.get(f"{op.url}/interaction/nope/login", timeout=30)
    assert error.status_code >= 400 and 'href="mailto:help@acme.test"' in error.text
