"""The ``sub`` a client sees (OIDC Core §8): the local user id for ``public`` clients, a
pairwise identifier for ``pairwise`` ones, the same in every token and answer about the user
that reaches that client: ID token, userinfo, access tokens, introspection, logout tokens.

Access tokens carry the pairwise value too (RFC 9068 §6): idp's access tokens are signed, not
encrypted, JWTs that the client can read, so a public ``sub`` in them would hand every pairwise
client the correlatable id that pairwise identifiers exist to withhold. The cost: an API called
by several pairwise clients of different sectors sees a different ``sub`` per sector, as those
clients do (node-oidc-provider and Auth0 apply pairwise to the ID token and userinfo only).
The local id is never lost: a user-bound access token's record holds it (userinfo reads it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

PUBLIC, PAIRWISE = "public", "pairwise"
SUBJECT_TYPES = (PUBLIC, PAIRWISE)


def sector_of(redirect_uris: list[str] | tuple[str, ...], sector_uri: str | None) -> str | None:
    """The sector identifier (OIDC Core §8.1): the host of ``sector_identifier_uri``, else the
    one host of the redirect URIs; None when there is none to take."""
    if sector_uri:
        return urlsplit(sector_uri).hostname
    hosts = {urlsplit(u).hostname for u in redirect_uris}
    return hosts.pop() if len(hosts) == 1 and None not in hosts else None


def subject_for(client_id: str, user_id: str) -> str:
    """The ``sub`` of user ``user_id`` as client ``client_id`` sees it."""
    # the app's services, not idp.extensions: that module imports the token issuer, which
    # imports this one
    svc = current_app.extensions["idp.services"]
    client = svc.clients.get(client_id)
    if client is None or getattr(client, "subject_type", PUBLIC) != PAIRWISE:
        return user_id
    # A pairwise client always has a sector (validated when set); the client id would keep
    # the identifiers unlinkable should one be missing, never fall back to the public id.
    sector = getattr(client, "sector", None) or f"client:{client_id}"
    return str(svc.box.pairwise_subject(sector, user_id))


def local_hint(client: Any, session: Any, hint_sub: str | None) -> str | None:
    """An ``id_token_hint``'s ``sub`` as a local user id when it is the session user's
    pairwise ``sub`` for ``client`` (OIDC Core §3.1.2.1 compares it with the session's user)."""
    if not hint_sub or session is None or client is None:
        return hint_sub
    if hint_sub == subject_for(client.client_id, session.user_id):
        return str(session.user_id)
    return hint_sub
