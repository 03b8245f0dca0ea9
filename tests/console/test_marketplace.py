"""The console's marketplace (``/admin/marketplace``): the plugins listed; a plugin's settings
and secrets as a form generated from its manifest; "install and deploy" with the chain's
binding in one API operation (the API then lists the binding and a login carries the plugin's
claim); the API's 400 on the form with the values kept; a secret never rendered back."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from tests.console.helpers import admin, console_login
from tests.helpers import hidden_inputs, jwt_parts, login_and_redeem
from tests.management.conftest import Mgmt, grant

NS = "https://claims.console.test"
SECRET = "w3bhook-s3cret-77a1"


@pytest.fixture(autouse=True)
def fresh_chain(op: Any) -> Any:
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()  # a chain left bound would run on other tests' logins


def reader(op: Any) -> Mgmt:
    return Mgmt(op, grant(op, ["read:actions"]), ["read:actions"], [])


def test_the_plugins_are_listed(op: Any) -> None:
    browser, _ = console_login(op, admin(op))
    page = browser.http.get(f"{op.url}/admin/marketplace").text
    for slug in ("user-claims", "login-webhook", "mfa-by-geography", "new-user-row"):
        assert f'href="/admin/marketplace/{slug}"' in page
    assert "Add user claims to tokens" in page and "config.namespace" not in page  # no form
    assert browser.http.get(f"{op.url}/admin/marketplace/nope").status_code == 404


def test_the_form_follows_the_manifest(op: Any) -> None:
    browser, _ = console_login(op, admin(op))
    page = browser.http.get(f"{op.url}/admin/marketplace/login-webhook").text
    # string (required), list with choices (checkboxes, defaults ticked), bool, a secret
    assert re.search(r'<label for="config-url">url \(required\)</label>\s*<input id="config-url" '
                     r'name="config.url" value="" aria-describedby="config-url-help" required', page)  # fmt: skip
    assert re.search(r'name="config.fields" value="user.email" checked', page)
    assert re.search(r'name="config.fields" value="user.name" >', page)
    assert "<legend>fields</legend>" in page
    assert re.search(r'type="checkbox" id="config-block_login_on_failure" name="config.block_login_on_failure" ', page)  # fmt: skip
    assert re.search(r'<input type="password" id="secret-token" name="secret.token" value=""', page)
    assert 'id="bind" name="bind" checked' in page
    claims = browser.http.get(f"{op.url}/admin/marketplace/user-claims").text
    assert 'name="config.static_claim_value" value="Batman"' in claims  # a default


def test_a_missing_required_field_is_the_apis_400_with_the_values_kept(op: Any) -> None:
    browser, _ = console_login(op, admin(op))
    url = f"{op.url}/admin/marketplace/login-webhook"
    page = browser.http.get(url).text
    refused = browser.http.post(url, data={
        **hidden_inputs(page), "config.url": "", "config.fields": ["user.email", "request.ip"],
        "config.block_login_on_failure": "on", "secret.token": SECRET, "name": "hook",
        "bind": "on",
    })  # fmt: skip
    assert refused.status_code == 400
    alert = re.search(r'role="alert"[^>]*>([^<]+)<', refused.text)
    assert alert and "'url is required' on property config.url" in html.unescape(alert.group(1))
    assert (
        'name="config.url" value="" aria-describedby="config-url-help" required aria-invalid="true"'
        in refused.text
    )
    assert re.search(r'value="user.email" checked', refused.text)
    assert re.search(r'value="request.ip" checked', refused.text)
    assert not re.search(r'value="client.client_id" checked', refused.text)  # a default unticked
    assert 'name="config.block_login_on_failure" checked' in refused.text
    assert 'id="name" name="name" value="hook"' in refused.text
    assert SECRET not in refused.text  # write-only: typed again, never rendered back
    assert "type it again" in refused.text
    assert reader(op).call("GET", "/actions/actions").json()["actions"] == []


def test_a_plugin_is_installed_and_bound_from_its_form(op: Any) -> None:
    browser, _ = console_login(op, admin(op))  # before anything is bound to post-login
    url = f"{op.url}/admin/marketplace/user-claims"
    page = browser.http.get(url).text
    done = browser.http.post(url, data={
        **hidden_inputs(page), "config.namespace": f"{NS}/",
        "config.access_token_fields": ["email"], "config.static_claim_name": "secretIdentity",
        "config.static_claim_value": "Robin", "name": "user-claims", "bind": "on",
    })  # fmt: skip
    assert done.status_code == 200 and "added at the end of the chain" in done.text
    assert done.url.endswith("/admin/flows/post-login?done=installed")
    api = reader(op)
    [binding] = api.call("GET", "/actions/triggers/post-login/bindings").json()["bindings"]
    assert binding["action"]["name"] == "user-claims" and binding["action"]["deployed_version"]
    action = api.call("GET", "/actions/actions/user-claims").json()
    assert action["configuration"] == {  # include_identities unticked: false
        "namespace": f"{NS}/", "access_token_fields": ["email"], "include_identities": False,
        "static_claim_name": "secretIdentity", "static_claim_value": "Robin",
    }  # fmt: skip
    assert f'href="/admin/actions/{action["id"]}"' in done.text  # the chain links to it

    tokens = login_and_redeem(op.url, op.factory.gen_client(), user := op.factory.gen_user())
    id_claims = jwt_parts(tokens["id_token"])[1]
    assert id_claims[f"{NS}/secretIdentity"] == "Robin" and f"{NS}/identities" not in id_claims
    assert jwt_parts(tokens["access_token"])[1][f"{NS}/email"] == user.email

    # the plugin page shows the installed settings; a secret plugin's value is never shown
    again = browser.http.get(url).text
    assert 'value="Robin"' in again and f'href="/admin/actions/{action["id"]}"' in again
    hook = f"{op.url}/admin/marketplace/login-webhook"
    form = browser.http.get(hook).text
    made = browser.http.post(hook, data={
        **hidden_inputs(form), "config.url": "https://hooks.console.test/in",
        "config.fields": ["user.email"], "secret.token": SECRET, "name": "login-webhook",
    })  # fmt: skip
    assert made.status_code == 200 and made.url.endswith("?done=deployed")  # not bound
    names = [b["action"]["name"] for b in
             api.call("GET", "/actions/triggers/post-login/bindings").json()["bindings"]]  # fmt: skip
    assert names == ["user-claims"]
    for shown in (made.text, browser.http.get(hook).text,
                  browser.http.get(f"{op.url}/admin/marketplace").text):  # fmt: skip
        assert SECRET not in shown
    stored = api.call("GET", "/actions/actions/login-webhook").json()
    assert [s["name"] for s in stored["secrets"]] == ["token"]


TIERS = """slug = "tiers"
title = "Tiers"
version = "1.0.0"
kind = "action"
trigger = "credentials-exchange"
description = "A tier claim."

[[config]]
name = "tier"
type = "string"
required = true
choices = ["gold", "silver"]
description = "The tier."

[[config]]
name = "codes"
type = "list"
description = "Free values."
"""


def test_an_enum_is_a_select_and_a_free_list_a_text_area(
    op: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiers").mkdir()
    (tmp_path / "tiers" / "manifest.toml").write_text(TIERS)
    (tmp_path / "tiers" / "action.py").write_text(
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://x/tier', event.configuration.tier)\n"
    )
    monkeypatch.setenv("IDP_MARKETPLACE_DIR", str(tmp_path))  # the server runs in this process
    browser, _ = console_login(op, admin(op))
    url = f"{op.url}/admin/marketplace/tiers"
    page = browser.http.get(url).text
    select = re.search(
        r'<select id="config-tier" name="config.tier"[^>]*>(.*?)</select>', page, re.S
    )
    assert select and re.findall(r'<option value="(\w*)"', select.group(1)) == ["gold", "silver"]
    assert re.search(r'<textarea id="config-codes" name="config.codes"[^>]*></textarea>', page)
    assert "<h2>Secrets</h2>" not in page

    refused = browser.http.post(url, data={**hidden_inputs(page), "config.tier": "bronze",
                                           "config.codes": "a1\r\nb2\r\n"})  # fmt: skip
    assert refused.status_code == 400 and "&#39;bronze&#39; is not one of gold" in refused.text
    assert re.search(r'name="config.codes"[^>]*>a1\nb2</textarea>', refused.text)

    done = browser.http.post(url, data={**hidden_inputs(page), "config.tier": "silver",
                                        "config.codes": "a1\r\n\r\nb2\r\n"})  # fmt: skip
    assert done.status_code == 200 and done.url.endswith(
        "/admin/flows/credentials-exchange?done=deployed"
    )
    action = reader(op).call("GET", "/actions/actions/tiers").json()
    assert action["configuration"] == {"tier": "silver", "codes": ["a1", "b2"]}
