"""The console's APIs pages (``/admin/apis``): an API created, edited (its scopes as text, one
a line), refused (the API's 400 on the form, values kept), stale (412 page) and deleted, and
its client grants given, changed and removed; each checked against what ``/api/v2`` holds."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.console.helpers import admin, console_login
from tests.flows.test_accessibility import browser as browser
from tests.helpers import hidden_inputs
from tests.management.conftest import ALL, Mgmt, grant


@pytest.fixture
def held(op: Any) -> Mgmt:
    """What the management API holds, read with a machine client's token."""
    return Mgmt(op, grant(op, ALL), ALL, [])


def alert(text: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', text)
    assert found, text[:500]
    return found.group(1)


def test_an_api_is_created_edited_and_deleted_through_the_api(op: Any, held: Mgmt) -> None:
    browser, _ = console_login(op, admin(op))
    http, url = browser.http, op.url
    form = http.get(f"{url}/admin/apis/new").text
    assert 'name="scopes"' in form and 'name="token_lifetime"' in form
    made = http.post(f"{url}/admin/apis/new", data={
        **hidden_inputs(form), "name": "Orders", "identifier": "https://orders.test/api",
        "scopes": "read:orders Read the orders\r\nwrite:orders\r\n\r\n",
        "signing_alg": re.search(r'<option value="(\w+)" selected', form).group(1),  # type: ignore[union-attr]
        "token_lifetime": "3600", "token_lifetime_for_web": "3600",
        "token_dialect": "rfc9068_profile", "allow_offline_access": "on",
        "skip_consent_for_verifiable_first_party_clients": "on",
    })  # fmt: skip
    assert made.status_code == 200 and "Saved." in made.text, made.text[:500]
    api = held.call("GET", "/resource-servers/" + quote("https://orders.test/api", safe="")).json()
    assert api["name"] == "Orders" and api["scopes"] == [
        {"value": "read:orders", "description": "Read the orders"},
        {"value": "write:orders", "description": ""},
    ]
    page = http.get(f"{url}/admin/apis/{api['id']}").text
    assert "read:orders Read the orders\nwrite:orders</textarea>" in page
    assert "Orders" in http.get(f"{url}/admin/apis").text

    # the API's refusal on the form, the values kept, nothing saved
    bad = http.post(f"{url}/admin/apis/{api['id']}", data={
        **hidden_inputs(page), "name": "Orders v2", "scopes": "read:orders\r\nbad\"scope",
        "token_lifetime": "60", "allow_offline_access": "on",
        "skip_consent_for_verifiable_first_party_clients": "on"})  # fmt: skip
    assert bad.status_code == 400 and "on property" in alert(bad.text)
    assert 'value="Orders v2"' in bad.text and "bad&#34;scope" in bad.text
    too_short = http.post(f"{url}/admin/apis/{api['id']}", data={
        **hidden_inputs(page), "name": "Orders v2", "scopes": "read:orders",
        "token_lifetime": "60", "allow_offline_access": "on",
        "skip_consent_for_verifiable_first_party_clients": "on"})  # fmt: skip
    assert too_short.status_code == 400
    assert "tenant-wide" in alert(too_short.text) and "token_lifetime" in alert(too_short.text)
    assert held.call("GET", f"/resource-servers/{api['id']}").json() == api

    # a scope removed, one added, renamed
    saved = http.post(f"{url}/admin/apis/{api['id']}", data={
        **hidden_inputs(page), "name": "Orders v2", "scopes": "write:orders Change them\r\nship",
        "allow_offline_access": "on", "skip_consent_for_verifiable_first_party_clients": "on",
    })  # fmt: skip
    assert saved.status_code == 200 and "Saved." in saved.text, saved.text[:500]
    now = held.call("GET", f"/resource-servers/{api['id']}").json()
    assert now["name"] == "Orders v2" and now["scopes"] == [
        {"value": "write:orders", "description": "Change them"},
        {"value": "ship", "description": ""},
    ]
    # the first page's ETag is stale now
    stale = http.post(f"{url}/admin/apis/{api['id']}", data={
        **hidden_inputs(page), "name": "Lost", "scopes": ""})  # fmt: skip
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text
    stale_delete = http.post(f"{url}/admin/apis/{api['id']}/delete", data=hidden_inputs(page))
    assert stale_delete.status_code == 412
    assert held.call("GET", f"/resource-servers/{api['id']}").json()["name"] == "Orders v2"

    fresh = http.get(f"{url}/admin/apis/{api['id']}").text
    gone = http.post(f"{url}/admin/apis/{api['id']}/delete", data=hidden_inputs(fresh))
    assert gone.status_code == 200 and "Orders v2" not in gone.text
    assert held.call("GET", f"/resource-servers/{api['id']}").status_code == 404
    assert http.get(f"{url}/admin/apis/{api['id']}").status_code == 404


def test_the_management_api_is_listed_but_cannot_be_deleted(op: Any, held: Mgmt) -> None:
    browser, _ = console_login(op, admin(op))
    listed = browser.http.get(f"{op.url}/admin/apis").text
    system = held.call("GET", "/resource-servers/" + quote(f"{op.url}/api/v2/", safe="")).json()
    assert f'href="/admin/apis/{system["id"]}"' in listed and "(system)" in listed
    page = browser.http.get(f"{op.url}/admin/apis/{system['id']}").text
    assert "Delete this API" not in page
    refused = browser.http.post(f"{op.url}/admin/apis/{system['id']}/delete",
                                data=hidden_inputs(page))  # fmt: skip
    assert refused.status_code == 400 and "system API" in refused.text


def test_client_grants_are_given_changed_and_removed_on_the_api_page(op: Any, held: Mgmt) -> None:
    api = held.call("POST", "/resource-servers", json={
        "identifier": "https://stock.test/", "name": "Stock",
        "scopes": [{"value": "read:stock", "description": "Read"}, {"value": "write:stock"}],
    }).json()  # fmt: skip
    machine = held.call("POST", "/clients", json={"name": "Stock sync",
                                                  "app_type": "non_interactive"}).json()  # fmt: skip
    browser, _ = console_login(op, admin(op))
    http, url = browser.http, op.url
    page = http.get(f"{url}/admin/apis/{api['id']}").text
    assert "Stock sync" in page and 'value="read:stock"' in page
    made = http.post(f"{url}/admin/apis/{api['id']}/grants", data={
        "csrf_token": hidden_inputs(page)["csrf_token"], "client_id": machine["client_id"],
        "scope": ["read:stock"]})  # fmt: skip
    assert made.status_code == 200, made.text[:500]
    grants = held.call("GET", "/client-grants", params={"audience": "https://stock.test/"}).json()
    assert [(g["client_id"], g["scope"]) for g in grants] == [
        (machine["client_id"], ["read:stock"])
    ]
    # the client has a grant now: it is no longer offered; a second grant is the API's 409
    assert f'<option value="{machine["client_id"]}"' not in made.text
    again = http.post(f"{url}/admin/apis/{api['id']}/grants", data={
        "csrf_token": hidden_inputs(page)["csrf_token"], "client_id": machine["client_id"]})  # fmt: skip
    assert again.status_code == 400 and "already" in alert(again.text)

    grant_url = f"{url}/admin/apis/{api['id']}/grants/{grants[0]['id']}"
    # the machine application's page lists it, linking to the grant's page
    app_page = http.get(f"{url}/admin/applications/{machine['client_id']}").text
    assert f'href="{grant_url.removeprefix(url)}">Stock</a>' in app_page
    assert "<td>read:stock</td>" in app_page
    form = http.get(grant_url).text
    assert re.search(r'value="read:stock" checked', form) and 'value="write:stock" >' in form
    changed = http.post(grant_url, data={**hidden_inputs(form), "scope": ["write:stock"]})
    assert changed.status_code == 200 and "Saved." in changed.text
    assert held.call("GET", f"/client-grants/{grants[0]['id']}").json()["scope"] == ["write:stock"]
    stale = http.post(grant_url, data={**hidden_inputs(form), "scope": ["read:stock"]})
    assert stale.status_code == 412 and "Changed meanwhile" in stale.text

    removed = http.post(f"{grant_url}/delete", data=hidden_inputs(changed.text))
    assert removed.status_code == 200 and "No machine application may call it yet" in removed.text
    assert held.call("GET", f"/client-grants/{grants[0]['id']}").status_code == 404


@pytest.mark.browser
def test_the_api_pages_pass_the_audit(op: Any, held: Mgmt, browser: Any) -> None:
    """axe-core's WCAG 2.1 A/AA rules (light and dark), no sideways scrolling at 375 px."""
    from tests.console.test_console_browser import sign_in
    from tests.flows.test_accessibility import DESKTOP, Auditor

    api = held.call("POST", "/resource-servers", json={
        "identifier": "https://audit.test/", "name": "Audited",
        "scopes": [{"value": "read:audit", "description": "Read"}]}).json()  # fmt: skip
    machine = held.call("POST", "/clients", json={"name": "Audit sync",
                                                  "app_type": "non_interactive"}).json()  # fmt: skip
    given = held.call("POST", "/client-grants", json={
        "client_id": machine["client_id"], "audience": "https://audit.test/",
        "scope": ["read:audit"]}).json()  # fmt: skip
    audit = Auditor()
    page = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
    sign_in(page, op, admin(op))
    for path in ("/admin/apis", "/admin/apis/new", f"/admin/apis/{api['id']}",
                 f"/admin/apis/{api['id']}/grants/{given['id']}",
                 f"/admin/applications/{machine['client_id']}"):  # fmt: skip
        page.goto(op.url + path)
        audit(page, path)
    page.goto(f"{op.url}/admin/apis/{api['id']}")
    page.get_by_label("Token lifetime (seconds)").fill("5")
    page.get_by_role("button", name="Save").click()
    assert "token_lifetime" in page.get_by_role("alert").inner_text()
    audit(page, "a refused edit")
    audit.assert_clean()
