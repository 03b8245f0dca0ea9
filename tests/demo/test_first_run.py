"""The first run, black-box (issue 20): a fresh instance made by the real commands (``idp init``,
``idp demo``), idp served by gunicorn (``idp serve``) and the demo app by ``idp demo-app``, each
its own process on a loopback port; Chromium presses the demo app's Log in, signs in on idp's
login page, reads the result page, refreshes, calls the demo API, logs out. Then the README's
tour: an action deployed with ``idp actions deploy`` sets a claim that the next login shows in
the tokens and at the demo API, and mfa-by-geography from the marketplace asks for TOTP.

``UPDATE_SCREENSHOTS=1`` saves the login page and the result page to docs/screenshots/ (the
README shows them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.flows.test_browser_journey import ARGS, CHROMIUM
from tests.ports import free_port

pytestmark = pytest.mark.browser

_SCRIPT = Path(sys.executable).parent / "idp"
IDP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "idp"]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CLAIM = "https://demo.example.com/plan"
ACTION = f"""
def on_execute_post_login(event, api):
    api.access_token.set_custom_claim("{CLAIM}", "gold")
    api.id_token.set_custom_claim("{CLAIM}", "gold")
"""


@dataclass
class FirstRun:
    instance: Path
    issuer: str
    app_url: str
    password: str

    def idp(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*IDP, "--instance", str(self.instance), *args],
            capture_output=True, text=True, timeout=120, env=_env(self.issuer),
        )  # fmt: skip
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc


def _env(issuer: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return {**env, "IDP_ISSUER": issuer, "PYTHONWARNINGS": "ignore"}


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers (bounded: 300 tries of 0.1 s); the process must stay up."""
    for _ in range(300):
        assert proc.poll() is None, f"{url}: the server exited:\n{log.read_text()[-3000:]}"
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    port, app_port = free_port(), free_port()
    issuer, app_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{app_port}"
    run = FirstRun(tmp_path_factory.mktemp("first-run") / "instance", issuer, app_url, "")
    run.idp("init")
    seeded = json.loads(run.idp("--json", "demo", "--app-url", app_url).stdout)
    run.password = seeded["password"]
    logs = run.instance.parent
    procs = []
    for name, argv in (
        ("serve", ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]),
        ("demo-app", ["demo-app", "--host", "127.0.0.1", "--port", str(app_port)]),
    ):
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [*IDP, "--instance", str(run.instance), *argv],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_env(issuer),
                )
            )
    try:
        _wait_for(f"{issuer}/health/live", procs[0], logs / "serve.log")
        _wait_for(f"{app_url}/", procs[1], logs / "demo-app.log")
        yield run
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _json(page: Any, testid: str) -> dict:
    return json.loads(page.get_by_test_id(testid).inner_text())


def _log_in(page: Any, run: FirstRun, screenshot: str | None = None) -> None:
    page.goto(run.app_url + "/")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{run.issuer}/**")
    assert page.get_by_label("Password").is_visible()
    if screenshot:
        page.screenshot(path=str(SHOTS / screenshot))
    page.get_by_label("Email").fill("demo@example.com")
    page.get_by_label("Password").fill(run.password)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{run.app_url}/")


def test_first_run_log_in_refresh_call_the_api_log_out(first_run, browser):
    run, shots = first_run, os.environ.get("UPDATE_SCREENSHOTS") == "1"
    if shots:
        SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1000, "height": 820})
    page = context.new_page()

    _log_in(page, run, "login.png" if shots else None)
    assert page.get_by_role("heading", name="Signed in as demo@example.com").is_visible()
    id_claims, userinfo = _json(page, "id-token"), _json(page, "userinfo")
    assert id_claims["iss"] == run.issuer and id_claims["sub"] == userinfo["sub"]
    assert id_claims["amr"] == ["pwd"] and id_claims["nonce"]
    assert userinfo["email"] == "demo@example.com" and userinfo["email_verified"] is True
    access = _json(page, "access-token")
    assert "https://api.example.com" in access["aud"] and "read:things" in access["scope"]

    page.get_by_role("button", name="Refresh the tokens").click()
    page.wait_for_url(f"{run.app_url}/")
    assert page.locator("#refreshes").inner_text() == "1"
    refreshed = _json(page, "access-token")
    assert refreshed["jti"] != access["jti"] and refreshed["sub"] == access["sub"]

    page.get_by_role("button", name="Call the demo API").click()
    page.wait_for_url(f"{run.app_url}/#api")
    answer = _json(page, "api")
    assert page.get_by_text("with the access token: HTTP 200").is_visible()
    assert answer["verified_claims"]["jti"] == refreshed["jti"]
    if shots:
        page.locator("h1").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "demo-app.png"))

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{run.app_url}/?state=*")
    assert page.get_by_text("You are signed out, of idp and of this app.").is_visible()
    page.get_by_role("button", name="Log in").click()  # signed out at idp too: no SSO
    page.wait_for_url(f"{run.issuer}/**")
    assert page.get_by_label("Password").is_visible()
    context.close()


def test_an_action_sets_a_claim_and_the_next_login_shows_it(first_run, browser):
    run = first_run
    source = run.instance.parent / "plan-claim.py"
    source.write_text(ACTION)
    run.idp("actions", "deploy", str(source), "--name", "plan-claim", "--trigger", "post-login")
    run.idp("actions", "bind", "plan-claim", "--trigger", "post-login")
    try:
        context = browser.new_context()
        page = context.new_page()
        _log_in(page, run)
        assert _json(page, "access-token")[CLAIM] == "gold"
        assert _json(page, "id-token")[CLAIM] == "gold"
        page.get_by_role("button", name="Call the demo API").click()
        page.wait_for_url(f"{run.app_url}/#api")
        assert _json(page, "api")["verified_claims"][CLAIM] == "gold"
        context.close()
    finally:
        run.idp("actions", "unbind", "plan-claim", "--trigger", "post-login")


def test_geo_mfa_from_the_marketplace_asks_for_totp_enrolment(first_run, browser):
    """The tour's second step: a login from localhost has no location, so with when_unknown the
    plugin asks for a second factor, and a user without one is offered TOTP enrolment."""
    run = first_run
    run.idp("marketplace", "install", "mfa-by-geography", "--config", "when_unknown=true", "--bind")
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(run.app_url + "/")
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Email").fill("demo@example.com")
        page.get_by_label("Password").fill(run.password)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{run.issuer}/interaction/*/mfa")
        assert page.get_by_role("heading", name="Set up a second step").is_visible()
        assert page.get_by_text("Scan this code with an authenticator app").is_visible()
        context.close()
    finally:
        run.idp("actions", "unbind", "mfa-by-geography", "--trigger", "post-login")
