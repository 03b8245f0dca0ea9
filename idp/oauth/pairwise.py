"""Pairwise subject identifiers per client (OIDC Core §8.1): the sector identifier and its
validation, and the metadata that says idp offers them.

A client's sector identifier is the host of its ``sector_identifier_uri`` when it has one,
else the host of its redirect URIs, which must then all share one host (§8.1: several hosts
need a ``sector_identifier_uri``). A ``sector_identifier_uri`` is an https URL whose document,
fetched through the SSRF-guarded client (``idp.core.http``) when it is set and whenever the
redirect URIs change, is a JSON array holding every redirect URI of the client (§8.1, OIDC
Dynamic Client Registration §5). Clients of one sector share their users' pairwise ``sub``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from idp.core import http
from idp.core.errors import ValidationError
from idp.extensions import Services
from idp.oauth.discovery import contributes
from idp.oauth.models import Client
from idp.oauth.subjects import PAIRWISE, PUBLIC, SUBJECT_TYPES, sector_of

MAX_DOCUMENT = 64 * 1024
UNCHANGED: Any = object()


def configure(
    config: dict[str, Any],
    client: Client,
    subject_type: str | None = None,
    sector_uri: str | None = UNCHANGED,
    old_redirect_uris: list[str] | None = None,
) -> None:
    """Set a client's ``subject_type`` and ``sector_identifier_uri`` (None: unchanged), and
    check them against its redirect URIs as they are now; call it too after the redirect URIs
    changed (``old_redirect_uris``: what they were). A change that would move a pairwise
    client to another sector is refused: every user's ``sub`` at that client would change."""
    kind = subject_type or client.subject_type or PUBLIC
    uri = client.sector_identifier_uri if sector_uri is UNCHANGED else (sector_uri or None)
    if client.app_type == "m2m" and (kind == PAIRWISE or uri):
        raise ValidationError("machine clients (non_interactive) have no users: no pairwise sub")
    validate(config, kind, list(client.redirect_uris), uri)
    if client.subject_type == PAIRWISE and kind == PAIRWISE:
        before = sector_of(old_redirect_uris or list(client.redirect_uris),
                           client.sector_identifier_uri)  # fmt: skip
        if before != sector_of(list(client.redirect_uris), uri):
            raise ValidationError(
                "this change moves the pairwise client to another sector, which changes every "
                "user's sub: register a sector_identifier_uri on the current host first"
            )
    client.subject_type, client.sector_identifier_uri = kind, uri


def validate(
    config: dict[str, Any],
    subject_type: str,
    redirect_uris: list[str],
    sector_uri: str | None,
) -> None:
    """Raise :class:`ValidationError` unless this subject type can be served to a client with
    these redirect URIs and this ``sector_identifier_uri`` (fetched and checked when given)."""
    if subject_type not in SUBJECT_TYPES:
        raise ValidationError(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}")
    if sector_uri:
        _check_document(config, sector_uri, redirect_uris)
    if subject_type == PUBLIC:
        return
    if sector_of(redirect_uris, sector_uri) is None:
        raise ValidationError(
            "a pairwise client whose redirect URIs do not share one host needs a "
            "sector_identifier_uri (OIDC Core §8.1)"
        )


def _check_document(config: dict[str, Any], uri: str, redirect_uris: list[str]) -> None:
    parts = urlsplit(uri)
    if parts.scheme != "https" and not config["SECTOR_IDENTIFIER_ALLOW_NETWORKS"]:
        raise ValidationError(f"sector_identifier_uri must be an https URL: {uri!r}")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise ValidationError(f"sector_identifier_uri must be an https URL: {uri!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        answer = http.fetch(
            "GET", uri, allowed_hosts=[f"{parts.hostname}:{port}"],
            allowed_networks=http.parse_networks(str(config["SECTOR_IDENTIFIER_ALLOW_NETWORKS"])),
            headers={"Accept": "application/json"}, timeout=5.0, max_body=MAX_DOCUMENT,
        )  # fmt: skip
    except (http.FetchRefused, ValueError) as exc:
        raise ValidationError(f"sector_identifier_uri could not be fetched: {exc}") from None
    if answer.status != 200:
        raise ValidationError(f"sector_identifier_uri answered HTTP {answer.status}")
    try:
        listed = json.loads(answer.body)
    except ValueError:
        listed = None
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise ValidationError("sector_identifier_uri must answer a JSON array of URIs")
    missing = [u for u in redirect_uris if u not in listed]
    if missing:
        raise ValidationError(
            f"sector_identifier_uri does not list the redirect URI {missing[0]!r} (§8.1)"
        )


@contributes
def _subject_types(document: dict[str, Any], svc: Services) -> None:
    """OIDC Discovery §3: every client may be pairwise (a per-client setting)."""
    document["subject_types_supported"] = [PUBLIC, PAIRWISE]
