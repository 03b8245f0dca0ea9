"""Calls to an upstream, through the SSRF-guarded client only (``idp.core.http.fetch``).

Each call names the hosts it may reach: those of the URLs the operator configured or the
upstream's discovery document announced, nothing else. Every failure becomes an
:class:`UpstreamError` with a stable reason and a description that carries no upstream body,
token or secret (the upstream's ``error`` code, which RFC 6749 §5.2 limits to a short ASCII
token, goes to ``detail`` for the tenant log).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

from idp.connections.upstream.contract import Settings, UpstreamError
from idp.core.http import FetchRefused, Response, fetch

USER_AGENT = "idp (+https://openid.net/specs/openid-connect-core-1_0.html)"
# RFC 6749 §5.2 allows more characters; real codes are snake_case, and this one is shown.
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def host_entry(url: str) -> str:
    """``host:port`` of ``url`` as ``fetch``'s allow-list wants it (IPv6 in brackets)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hosts_of(urls: Iterable[str | None]) -> frozenset[str]:
    return frozenset(host_entry(u) for u in urls if u)


def safe_code(value: Any) -> str:
    """An upstream ``error`` code fit for a log line, or ``invalid`` when it is not one."""
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else "invalid"


def call(
    method: str,
    url: str,
    *,
    hosts: frozenset[str],
    settings: Settings,
    what: str,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """One request to the upstream; a refusal, a timeout or a too-large answer is
    ``unreachable`` or ``response_too_large`` (``what`` names the call in the text)."""
    sent = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    body = None
    if form is not None:
        body = urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        return fetch(
            method, url, allowed_hosts=hosts, allowed_networks=settings.allowed_networks,
            headers=sent, body=body, timeout=settings.timeout, max_body=settings.max_body,
        )  # fmt: skip
    except FetchRefused as exc:
        # FetchRefused messages name hosts and exception types, never bodies or headers.
        if "larger than" in str(exc):
            raise UpstreamError(
                "response_too_large", "The sign-in provider sent an answer that is too large.",
                f"{what}: {exc}",
            ) from None  # fmt: skip
        raise UpstreamError(
            "unreachable", "The sign-in provider could not be reached.", f"{what}: {exc}"
        ) from None


_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def json_body(response: Response, *, reason: str, what: str) -> Any:
    """The answer's JSON, or ``reason`` (a non-JSON answer)."""
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise UpstreamError(
            reason, "The sign-in provider sent an answer idp cannot read.",
            f"{what}: HTTP {response.status}, not JSON",
        ) from None  # fmt: skip


def get_json(
    url: str,
    *,
    hosts: frozenset[str],
    settings: Settings,
    reason: str,
    what: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """GET ``url``; a non-2xx or non-JSON answer is ``reason``."""
    response = call("GET", url, hosts=hosts, settings=settings, what=what, headers=headers)
    if not 200 <= response.status < 300:
        raise UpstreamError(
            reason, "The sign-in provider refused a request.", f"{what}: HTTP {response.status}"
        )
    return json_body(response, reason=reason, what=what)


def post_token(
    url: str,
    form: dict[str, str],
    *,
    hosts: frozenset[str],
    settings: Settings,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The token request (RFC 6749 §4.1.3) and its answer (§5.1), checked: a JSON object with
    a string ``access_token``. An error (§5.2; GitHub sends it with a 200) is
    ``bad_token_response`` with the upstream's error code in ``detail``."""
    response = call("POST", url, hosts=hosts, settings=settings, what="token", headers=headers,
                    form=form)  # fmt: skip
    answer = json_body(response, reason="bad_token_response", what="token")
    if not isinstance(answer, dict):
        answer = {}
    if not 200 <= response.status < 300 or "error" in answer:
        raise UpstreamError(
            "bad_token_response", "The sign-in provider did not accept the sign-in.",
            f"token: HTTP {response.status}, error {safe_code(answer.get('error'))}",
        )  # fmt: skip
    if not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
        raise UpstreamError(
            "bad_token_response", "The sign-in provider sent no access token.",
            "token: no access_token",
        )  # fmt: skip
    if not _B64TOKEN.match(answer["access_token"]):
        # RFC 6750 §2.1: it goes into an Authorization header as a b64token; anything else
        # (a CR, a non-ASCII letter) is refused here, not by the HTTP library mid-request
        raise UpstreamError(
            "bad_token_response", "The sign-in provider sent a token idp cannot use.",
            "token: access_token is not a b64token",
        )  # fmt: skip
    token_type = answer.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        # §7.1: a type idp does not know how to use (DPoP was not asked for).
        raise UpstreamError(
            "bad_token_response", "The sign-in provider sent a token idp cannot use.",
            f"token: token_type {safe_code(token_type)}",
        )  # fmt: skip
    return answer


def upstream_error(params: dict[str, str]) -> UpstreamError:
    """An ``error`` in the authorization response (RFC 6749 §4.1.2.1): the upstream's code is
    shown (a short token), its free-text description only logged, shortened."""
    code = safe_code(params.get("error"))
    note = params.get("error_description", "")
    note = re.sub(r"[^\x20-\x7e]", "?", note)[:200] if isinstance(note, str) else ""
    return UpstreamError(
        "upstream_error", f"The sign-in provider answered: {code}.",
        f"error {code}" + (f": {note}" if note else ""),
    )  # fmt: skip
