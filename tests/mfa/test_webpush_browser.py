"""The web authenticator in Chromium (Playwright, Debian's /usr/bin/chromium): the page, its
manifest and its service worker load under the page's strict CSP without a violation; the page
enrols with a WebCrypto key that cannot be exported; a login pushes to the (loopback) push
service; the pushed message delivered to the service worker brings the request to the page,
where picking the number signs the approval and the login completes.

What cannot run offline: Chromium's real ``PushManager.subscribe`` asks Google's push service
(FCM) for an endpoint. The page's ``subscribe`` is therefore stubbed (before the page's own
script runs) to return a subscription whose keys this test holds and whose endpoint is the
loopback push service; everything else is real: the page's script, IndexedDB, WebCrypto, the
service worker (registration, its push handler through the DevTools protocol's
``ServiceWorker.deliverPushMessage``, its notification), the server's encryption, VAPID and
delivery through the guarded client."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from idp.mfa.push import ticket_uri
from tests.conftest import LiveServer, build_app, serving
from tests.flows.test_browser_journey import ARGS, CHROMIUM
from tests.helpers import jwt_parts
from tests.mfa.test_push import check, post_to, start_push
from tests.mfa.test_totp import follow, tokens_from
from tests.mfa.test_webpush import ticket_for
from tests.mfa.webpush_service import PushService, Subscriber, push_service

pytestmark = pytest.mark.browser

STUB = """
(() => {
  const subscription = %s;
  window.__subscribed = [];
  window.__csp = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
  if (!window.PushManager) return;
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    localStorage.setItem("subscribed", "1");
    window.__subscribed.push({
      userVisibleOnly: options.userVisibleOnly,
      key: btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_")
        .replace(/=+$/, ""),
    });
    return { endpoint: subscription.endpoint, toJSON: () => subscription,
             unsubscribe: async () => true };
  };
  // the browser's current subscription: this script's, once subscribe() ran in any load
  PushManager.prototype.getSubscription = async function () {
    return localStorage.getItem("subscribed") ? { endpoint: subscription.endpoint,
                                                  toJSON: () => subscription } : null;
  };

})();
"""

KEY_STATE = """
(issuer) => new Promise((resolve, reject) => {
  const opened = indexedDB.open("idp-authenticator", 1);
  opened.onerror = () => reject(opened.error);
  opened.onsuccess = () => {
    const get = opened.result.transaction("state").objectStore("state").get(issuer);
    get.onsuccess = async () => {
      const key = get.result.privateKey;
      const exported = await crypto.subtle.exportKey("pkcs8", key).then(() => "exported",
                                                                      () => "refused");
      resolve({ extractable: key.extractable, type: key.type, exported,
                algorithm: key.algorithm.name + " " + key.algorithm.namedCurve });
    };
  };
})
"""


@pytest.fixture(scope="module")
def service() -> Iterator[PushService]:
    with push_service() as running:
        yield running


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, service: PushService) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("instance")
    settings = {"MFA_WEBPUSH_HOSTS": f"127.0.0.1:{service.port}",
                "MFA_WEBPUSH_ALLOW_NETWORKS": "127.0.0.0/8"}  # fmt: skip
    with serving(lambda port: build_app(tmp, port, **settings)) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_the_web_authenticator_enrols_receives_the_push_and_approves(
    op: Any, service: PushService, chromium: Any
) -> None:
    subscriber = Subscriber(service)
    client, user, browser, page_html, path, ticket = ticket_for(op)
    context = chromium.new_context()
    context.grant_permissions(["notifications"], origin=op.url)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.add_init_script(STUB % json.dumps(subscriber.subscription()))
    try:
        # the sign-in page's second QR code: the web authenticator, the link in the fragment
        web = re.search(r'<a href="(http[^"]+/mfa/push/app/#ticket=[^"]+)"', page_html)
        assert web and "<svg" in page_html.split('id="web-authenticator"')[1]
        resp = page.goto(html.unescape(web.group(1)))
        assert resp is not None and resp.status == 200
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "manifest-src 'self'" in csp and "worker-src 'self'" in csp
        page.wait_for_selector("#authenticator[data-state=ready]", timeout=15000)
        worker = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.active && r.active.scriptURL)"
        )
        assert worker == op.url + "/mfa/push/app/sw.js"
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [] and manifest["url"].endswith("manifest.webmanifest")
        assert json.loads(manifest["data"])["display"] == "standalone"

        # enrol: the link came filled in from the fragment
        assert page.input_value("#ticket") == ticket_uri(op.url, ticket)
        page.click("#enrol-form button[type=submit]")
        page.wait_for_selector("#authenticator[data-state=enrolled]", timeout=15000)
        vapid = op.app.test_client().get("/mfa/push/vapid").get_json()["public_key"]
        assert page.evaluate("window.__subscribed") == [{"userVisibleOnly": True, "key": vapid}]
        assert page.evaluate(KEY_STATE, op.url) == {
            "extractable": False, "type": "private", "exported": "refused",
            "algorithm": "ECDSA P-256",
        }  # fmt: skip
        name = page.evaluate("navigator.userAgentData.platform")
        with op.app.app_context():
            from idp.extensions import db
            from idp.mfa.models import Factor

            [factor] = db.session.query(Factor).filter_by(kind="push").filter(
                Factor.user_id == user.user_id
            ).all()  # fmt: skip
            assert name and factor.data["model"].endswith(" · " + name)  # the page named it
            db.session.rollback()
        codes = post_to(browser, page_html, path, {"action": "check"})
        assert codes.status_code == 200
        done, _ = follow(browser, post_to(browser, codes.text, path, {"action": "continue"}))
        assert done and "code=" in done

        # a later login pushes; the message reaches the worker as the browser would hand it
        login, uid, number, verifier = start_push(op, client, user)
        pushed = subscriber.decrypt(service.wait(1, subscriber.path)[0])
        registrations: list[dict[str, Any]] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated",
               lambda event: registrations.extend(event["registrations"]))  # fmt: skip
        cdp.send("ServiceWorker.enable")
        for _ in range(50):  # CDP events arrive while Playwright waits, not during time.sleep
            if registrations:
                break
            page.wait_for_timeout(100)
        [registration] = [r for r in registrations if not r.get("isDeleted")]
        cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": op.url, "registrationId": registration["registrationId"],
            "data": json.dumps(pushed),
        })  # fmt: skip
        item = page.wait_for_selector(f"li.request[data-challenge='{pushed['challenge']}']",
                                      timeout=15000)  # fmt: skip
        assert item is not None
        shown = sorted(int(b.inner_text()) for b in item.query_selector_all("button.number"))
        assert shown == sorted(pushed["numbers"]) and number in shown
        item.query_selector(f"button.number:text-is('{number}')").click()  # type: ignore[union-attr]
        page.wait_for_selector("#authenticator[data-state=answered-approved]", timeout=15000)

        location, _ = follow(login, check(login, uid))
        assert location and "code=" in location
        amr = jwt_parts(tokens_from(op, client, location, verifier)["id_token"])[1]["amr"]
        assert amr == ["pwd", "swk", "mfa"]

        # a wrong number from the page is refused, and the login fails
        login, uid, number, _ = start_push(op, client, user)
        pushed = subscriber.decrypt(service.wait(2, subscriber.path)[1])
        page.click("#refresh")
        item = page.wait_for_selector(f"li.request[data-challenge='{pushed['challenge']}']",
                                      timeout=15000)  # fmt: skip
        assert item is not None
        wrong = next(n for n in pushed["numbers"] if n != number)
        item.query_selector(f"button.number:text-is('{wrong}')").click()  # type: ignore[union-attr]
        page.wait_for_selector("#authenticator[data-state=answered-wrong_number]", timeout=15000)
        assert check(login, uid).status_code == 401

        # the browser's subscription changed: the page sends the new one when opened
        renewed = Subscriber(service)
        page.add_init_script(STUB % json.dumps(renewed.subscription()))
        page.reload()
        page.wait_for_selector("#authenticator[data-subscription=sent]", timeout=15000)
        start_push(op, client, user)
        assert renewed.decrypt(service.wait(1, renewed.path)[0])["type"] == "login-approval"
        assert len(service.wait(2, subscriber.path)) == 2  # the old endpoint got nothing more

        assert page.evaluate("window.__csp") == []
        assert not [m for m in console if "Content Security Policy" in m or m.startswith("error")]
    finally:
        context.close()
