"""A real upstream OpenID provider for connection tests: npm ``oidc-provider`` (v9, unmodified)
run by ``upstream_server.mjs`` on a free loopback port.

Use the pytest fixture (module-scoped; ``tests/connections/conftest.py`` re-exports it, other
folders import it: ``from tests.connections.upstream import oidc_upstream  # noqa: F401``)::

    def test_x(oidc_upstream):
        options = oidc_upstream.options()            # oidc connection options (basic auth)
        started = upstream.begin("oidc", options, redirect_uri=REDIRECT_URI, ...)
        params = oidc_upstream.login(started.url, "verified-alice@example.com")
        # params: the callback's parameters (code, state, iss) the upstream redirected or
        # form-posted back with; the redirect URI itself is not visited.

or, for a server of one's own (its keys rotate, its redirect URIs...), the context manager
``running_upstream(redirect_uris=[...])``. The API (stable, other tests rely on it):

- ``issuer``, ``client_id``, ``client_secret`` (the ``client_secret_basic`` client);
  ``clients``: auth method -> :class:`Client` for ``client_secret_basic``,
  ``client_secret_post`` and ``private_key_jwt`` (its ``private_key`` PEM and ``key_id``);
- ``options(method=..., **extra)``: options of an ``oidc`` connection to this upstream;
- ``login(authorize_url, login) -> dict[str, str]``: drives the dev login form over plain
  HTTP (a fresh cookie jar each call) and returns the callback parameters;
- ``rotate_keys() -> str``: a new signing key replaces the old one (the new kid);
- ``allow_redirect_uri(uri)``: registers one more redirect URI for every client;
- ``url(path)``: an absolute URL on the upstream (``/gh/user``, ``/gh/user/emails``, ``/token``).

``SETTINGS`` lets idp's upstream client reach loopback; ``sign_in(upstream, strategy, options,
login)`` runs ``begin``, the upstream login and ``finish`` in one go (returns the profile).

Accounts derive from the login name: ``sub`` is the login, ``email`` the login (or
``login@upstream.test``), ``email_verified`` true only for a login starting with
``verified-``; ``given_name`` is the local part capitalised, ``family_name`` "Upstream";
userinfo adds ``locale`` (fr-FR) and ``picture``, which the ID token lacks.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from idp.connections import strategies
from idp.connections import upstream as idp_upstream
from idp.connections.upstream import discovery
from idp.core.http import parse_networks

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("upstream_server.mjs")
PACKAGE = ROOT / "node_modules" / "oidc-provider" / "package.json"
NODE = shutil.which("node")
# Where the upstream sends the browser back; login() never visits it.
REDIRECT_URI = "https://rp.test/login/callback"
PASSWORD = "any-password"  # the dev form takes any
# idp's client may reach loopback upstreams (the guard refuses them otherwise).
SETTINGS = idp_upstream.Settings(allowed_networks=parse_networks("127.0.0.0/8"), timeout=10.0)


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str | None
    method: str
    private_key: str | None = None  # PEM (private_key_jwt)
    key_id: str | None = None


class UpstreamLoginError(AssertionError):
    """The upstream's pages did not lead back to the redirect URI."""


class _Forms(HTMLParser):
    """The forms of a page: action, method and their input fields (name -> value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": values.get("action", ""), "method": values.get("method", "get"),
                 "fields": {}}
            )  # fmt: skip
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


@dataclass
class OidcUpstream:
    issuer: str
    clients: dict[str, Client]
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def client_id(self) -> str:
        return self.clients["client_secret_basic"].client_id

    @property
    def client_secret(self) -> str:
        secret = self.clients["client_secret_basic"].client_secret
        assert secret is not None
        return secret

    def url(self, path: str) -> str:
        return self.issuer + path

    def options(self, method: str = "client_secret_basic", **extra: Any) -> dict[str, Any]:
        """Options of an ``oidc`` connection to this upstream, authenticating with ``method``."""
        client = self.clients[method]
        options: dict[str, Any] = {
            "issuer": self.issuer,
            "client_id": client.client_id,
            "scopes": ["openid", "profile", "email"],
            "token_endpoint_auth_method": method,
        }
        if client.client_secret is not None:
            options["client_secret"] = client.client_secret
        if client.private_key is not None:
            options["private_key"] = client.private_key
            options["key_id"] = client.key_id
        return {**options, **extra}

    def rotate_keys(self) -> str:
        """Replace the upstream's signing key; its JWKS then holds only the new one."""
        answer = requests.post(self.url("/test/rotate"), timeout=10)
        answer.raise_for_status()
        return str(answer.json()["kid"])

    def allow_redirect_uri(self, uri: str) -> None:
        answer = requests.post(self.url("/test/redirect-uris"), data=uri.encode(), timeout=10)
        answer.raise_for_status()

    def login(self, authorize_url: str, login: str) -> dict[str, str]:
        """Follow ``authorize_url`` as a browser would, sign in as ``login`` on the dev form,
        and return the parameters the upstream sent back to the redirect URI (from the
        redirect's query, or the auto-submitting form of ``response_mode=form_post``)."""
        origin = urlsplit(self.issuer)[:2]
        browser = requests.Session()
        method, url, data = "GET", authorize_url, None
        for _ in range(12):
            answer = browser.request(method, url, data=data, allow_redirects=False, timeout=10)
            if answer.is_redirect:
                target = urljoin(answer.url, answer.headers["location"])
                parts = urlsplit(target)
                if parts[:2] != origin:  # back to the relying party: stop there
                    return dict(parse_qsl(parts.query or parts.fragment))
                method, url, data = "GET", target, None
                continue
            if answer.status_code != 200:
                raise UpstreamLoginError(f"{answer.status_code} at {url}: {answer.text[:500]}")
            parser = _Forms()
            parser.feed(answer.text)
            if not parser.forms:
                raise UpstreamLoginError(f"no form at {url}: {answer.text[:500]}")
            form = parser.forms[0]
            action = urljoin(answer.url, form["action"])
            fields = dict(form["fields"])
            if urlsplit(action)[:2] != origin:  # form_post: the answer for the redirect URI
                return fields
            if "login" in fields:
                fields.update(login=login, password=PASSWORD)
            method, url, data = "POST", action, fields
        raise UpstreamLoginError(f"too many steps, last at {url}")


def _rsa_pem_and_jwk(kid: str) -> tuple[str, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = RSAKey.import_key(pem).as_dict(private=False)
    return pem, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
            if b"\n" in buffer:
                return dict(json.loads(buffer.split(b"\n", 1)[0]))
        elif process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"the upstream did not start: {log.read_text()[-2000:]}")


@contextmanager
def running_upstream(redirect_uris: list[str] | None = None) -> Iterator[OidcUpstream]:
    """Start ``upstream_server.mjs`` on a free loopback port; stop it on exit."""
    if NODE is None or not PACKAGE.exists():
        pytest.skip("node or npm oidc-provider is missing (run `npm ci`)")
    pem, public_jwk = _rsa_pem_and_jwk("pkjwt-" + secrets.token_hex(4))
    # A secret with the characters RFC 6749 §2.3.1's form-encoding exists for.
    clients = {
        "client_secret_basic": Client("idp-basic", "b:" + secrets.token_urlsafe(16) + " +%/&=",
                                      "client_secret_basic"),
        "client_secret_post": Client("idp-post", secrets.token_urlsafe(24), "client_secret_post"),
        "private_key_jwt": Client("idp-pkjwt", None, "private_key_jwt", pem, public_jwk["kid"]),
    }  # fmt: skip
    registered = [
        {"client_id": c.client_id, "token_endpoint_auth_method": c.method,
         **({"client_secret": c.client_secret} if c.client_secret else {}),
         **({"jwks": {"keys": [public_jwk]}} if c.private_key else {})}
        for c in clients.values()
    ]  # fmt: skip
    args = [str(NODE), str(SCRIPT), "--port", "0"]
    for uri in redirect_uris or [REDIRECT_URI]:
        args += ["--redirect-uri", uri]
    env = {**os.environ, "UPSTREAM_CLIENTS": json.dumps(registered)}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "upstream.log"
        with log.open("wb") as err:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
            try:
                ready = _wait_ready(process, log)
                # A port used before may have had another upstream's keys cached.
                discovery.clear()
                yield OidcUpstream(issuer=ready["issuer"], clients=clients, process=process)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()


def sign_in(
    upstream: OidcUpstream,
    strategy: str,
    options: dict[str, Any],
    login: str,
    *,
    login_hint: str | None = None,
) -> idp_upstream.UpstreamProfile:
    """``begin``, the login at the upstream, ``finish``: the profile idp gets (options go
    through ``strategies.validate_options`` first, as a stored connection's did)."""
    checked = strategies.validate_options(strategy, options)
    started = idp_upstream.begin(
        strategy, checked, redirect_uri=REDIRECT_URI, state=secrets.token_urlsafe(16),
        login_hint=login_hint, settings=SETTINGS,
    )  # fmt: skip
    params = upstream.login(started.url, login)
    return idp_upstream.finish(
        strategy, checked, redirect_uri=REDIRECT_URI, params=params, kept=started.kept,
        settings=SETTINGS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def oidc_upstream() -> Iterator[OidcUpstream]:
    """A running upstream for the module; its redirect URI is :data:`REDIRECT_URI` (add
    others with ``allow_redirect_uri``)."""
    with running_upstream() as upstream:
        yield upstream
