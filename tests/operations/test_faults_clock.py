"""The clock jumps (issue 17, faults): idp's clock (``idp.core.clock``, the server runs in this
process) moves two hours forward, then two hours back, past the creation of the only signing
key. Every answer is a clear one (an OAuth error, a 401, a 503 with ``Retry-After`` when no key
signs at that time), never a 500; nothing is half done (a code or a refresh token refused for
want of a key stays usable once the clock is right), and on SQLite ``PRAGMA integrity_check``
finds the database intact."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import requests

from tests.conftest import build_app, serving
from tests.helpers import Browser, auth_params, pkce, redeem

SCOPE = "openid offline_access"
HOURS_2 = 7200


class Recorder:
    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []

    def __call__(self, resp: requests.Response, *_a: Any, **_kw: Any) -> None:
        self.answers.append((resp.status_code, resp.request.method + " " + resp.url[:80]))

    def session(self) -> requests.Session:
        http = requests.Session()
        http.hooks["response"].append(self)
        return http


def _flows(base: str, client: Any, user: Any, seen: Recorder) -> dict[str, Any]:
    """A login, its tokens, and a second code not yet redeemed."""
    browser = Browser(base)
    browser.http.hooks["response"].append(seen)
    verifier, challenge = pkce()
    first = browser.authorize(auth_params(client, challenge, scope=SCOPE), user)
    tokens = redeem(base, client, first.code, verifier).json()
    verifier, challenge = pkce()
    pending = browser.authorize(auth_params(client, challenge, scope=SCOPE))
    assert pending.code
    return {"browser": browser, "tokens": tokens, "code": pending.code, "verifier": verifier}


def _refresh(http: requests.Session, base: str, client: Any, token: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return http.post(f"{base}/oauth/token", auth=client.basic, data=form, timeout=60)


def _no_server_errors(seen: Recorder) -> None:
    assert not [a for a in seen.answers if a[0] >= 500 and a[0] != 503], seen.answers


def test_clock_jumps_forward_and_back(tmp_path, clock):
    seen = Recorder()
    with serving(lambda port: build_app(tmp_path, port)) as live:
        base, factory = live.url, live.factory
        client, user = factory.gen_client(), factory.gen_user()
        m2m, audience = factory.m2m()
        http = seen.session()
        state = _flows(base, client, user, seen)

        clock.advance(HOURS_2)  # forward: what was short-lived has expired, cleanly
        late = http.post(f"{base}/oauth/token", auth=client.basic, timeout=60,
                         data={"grant_type": "authorization_code", "code": state["code"],
                               "redirect_uri": client.redirect_uri,
                               "code_verifier": state["verifier"]})  # fmt: skip
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant", late.text
        bearer = {"Authorization": f"Bearer {state['tokens']['access_token']}"}
        assert http.get(f"{base}/userinfo", headers=bearer, timeout=60).status_code == 401
        refreshed = _refresh(http, base, client, state["tokens"]["refresh_token"])
        assert refreshed.status_code in (200, 400), refreshed.text
        verifier, challenge = pkce()
        again = state["browser"].authorize(auth_params(client, challenge, scope=SCOPE), user)
        assert again.code and redeem(base, client, again.code, verifier).status_code == 200
        clock.reset()

        state = _flows(base, client, user, seen)
        clock.advance(-HOURS_2)  # back, before the signing key was made: no key signs now
        code_form = {"grant_type": "authorization_code", "code": state["code"],
                     "redirect_uri": client.redirect_uri, "code_verifier": state["verifier"]}  # fmt: skip
        answers = [
            http.post(f"{base}/oauth/token", auth=client.basic, data=code_form, timeout=60),
            _refresh(http, base, client, state["tokens"]["refresh_token"]),
        ]
        for resp in answers:
            assert resp.status_code == 503, resp.text
            assert resp.headers.get("Retry-After", "").isdigit()
            assert resp.json()["error"] == "server_error"
            assert "no-store" in resp.headers.get("Cache-Control", "")
        bearer = {"Authorization": f"Bearer {state['tokens']['access_token']}"}
        assert http.get(f"{base}/userinfo", headers=bearer, timeout=60).status_code in (200, 401)
        machine = http.post(f"{base}/oauth/token", auth=m2m.basic, timeout=60,
                            data={"grant_type": "client_credentials", "audience": audience})  # fmt: skip
        assert machine.status_code in (200, 503), machine.text
        page = http.get(f"{base}/authorize", params=auth_params(client, pkce()[1]), timeout=60)
        assert page.status_code in (200, 302), page.status_code
        clock.reset()

        # refused for want of a key, not half done: both still work, the code once
        redeemed = http.post(f"{base}/oauth/token", auth=client.basic, data=code_form, timeout=60)
        assert redeemed.status_code == 200, redeemed.text
        replay = http.post(f"{base}/oauth/token", auth=client.basic, data=code_form, timeout=60)
        assert replay.status_code == 400
        assert _refresh(http, base, client, state["tokens"]["refresh_token"]).status_code == 200
        _no_server_errors(seen)
        database = live.app.config["DATABASE_URL"]

    if database.startswith("sqlite:///"):
        with closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as con:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
