"""Drivers: PKCE, the login form, the authorization round trip, token calls, JWT decoding."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.factories import TestClient, TestUser


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified (tests verify signatures separately with joserfc)."""
    header, payload, _sig = token.split(".")
    return b64json(header), b64json(payload)


def hidden_inputs(page: str) -> dict[str, str]:
    fields = {}
    for match in re.finditer(r"<input[^>]+>", page):
        tag = match.group(0)
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return fields


LOGIN_FORM = re.compile(r'<form method="post" action="(/interaction/[^/"]+/login)"')


def login_form_action(page: str) -> str | None:
    """Where the database connection's login form posts, if ``page`` shows one."""
    found = LOGIN_FORM.search(page)
    return found.group(1) if found else None


def interaction_uid(page: str) -> str:
    """The interaction a login page belongs to (the page may be shown at /authorize)."""
    action = login_form_action(page)
    assert action is not None, "not a login page"
    return action.split("/")[2]


@dataclass
class AuthResult:
    """Where the OP finally sent the browser: a client redirect, or a page shown by the OP."""

    status: int
    location: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    page: str = ""
    login_shown: bool = False
    consent_shown: bool = False

    @property
    def code(self) -> str | None:
        return self.params.get("code")


class Browser:
    """A cookie-keeping user agent that follows the OP's own redirects and fills in the login
    form, and stops at the first redirect that leaves the OP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def authorize(
        self,
        params: dict[str, Any],
        user: TestUser | None = None,
        method: str = "GET",
        password: str | None = None,
        consent: str | None = None,
    ) -> AuthResult:
        """``consent``: "allow" or "deny" answers a consent page; None stops at it."""
        url = f"{self.base}/authorize"
        if method == "GET":
            resp = self.http.get(url, params=params, allow_redirects=False)
        else:
            resp = self.http.post(url, data=params, allow_redirects=False)
        login_shown = consent_shown = False
        for _ in range(10):
            if resp.status_code in (301, 302, 303, 307, 308):
                location = resp.headers["Location"]
                target = location if location.startswith("http") else self.base + location
                if not target.startswith(self.base + "/"):
                    query = urlsplit(target).query
                    flat = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
                    return AuthResult(
                        resp.status_code,
                        target,
                        flat,
                        login_shown=login_shown,
                        consent_shown=consent_shown,
                    )
                resp = self.http.get(target, allow_redirects=False)
                continue
            action = login_form_action(resp.text) if resp.status_code == 200 else None
            if action is not None:  # shown by /authorize itself or by /interaction/<uid>/login
                login_shown = True
                if user is None:
                    return AuthResult(resp.status_code, page=resp.text, login_shown=True)
                fields = hidden_inputs(resp.text)
                fields.update(email=user.email, password=password or user.password)
                resp = self.http.post(self.base + action, data=fields, allow_redirects=False)
                continue
            if "/interaction/" in resp.url and "/consent" in resp.url and resp.status_code == 200:
                consent_shown = True
                if consent is None:
                    return AuthResult(
                        resp.status_code,
                        page=resp.text,
                        login_shown=login_shown,
                        consent_shown=True,
                    )
                fields = hidden_inputs(resp.text)
                fields["decision"] = consent
                resp = self.http.post(resp.url, data=fields, allow_redirects=False)
                continue
            return AuthResult(
                resp.status_code,
                page=resp.text,
                login_shown=login_shown,
                consent_shown=consent_shown,
            )
        raise AssertionError("redirect loop at the OP")


def auth_params(client: TestClient, challenge: str, **extra: Any) -> dict[str, Any]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def redeem(
    base: str, client: TestClient, code: str, verifier: str, **extra: Any
) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    data.update(extra)
    auth = None
    if client.client_secret is not None:
        auth = client.basic
    else:
        data["client_id"] = client.client_id
    return requests.post(f"{base}/oauth/token", data=data, auth=auth)


def login_and_redeem(
    base: str,
    client: TestClient,
    user: TestUser,
    scope: str = "openid",
    browser: Browser | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Full code flow; returns the token response JSON (asserting success)."""
    browser = browser or Browser(base)
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge, scope=scope, **extra), user)
    assert result.code, (result.status, result.params, result.page[:500])
    resp = redeem(base, client, result.code, verifier)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def form_url(base: str, path: str, params: dict[str, Any]) -> str:
    return f"{base}{path}?{urlencode(params)}"
