"""The users search's pages that read an index range in the page's order and stop after the
page, rather than a filter over the users' order (idp.identity.search chooses them; migrations
0037 and 0038 made the indexes; bench/README.md's scale benchmark measured why)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select

from idp.connections.models import Identity
from idp.identity.models import User, UserMetadataTerm, metadata_value_digest
from idp.identity.search_query import Term


def keys_first(
    sort: str | None,
    order: list[Any],
    condition: ColumnElement[bool],
    window: tuple[int, int],
    cap: int,
) -> Select[User, int]:
    """PostgreSQL, an email prefix in created_at order: at most ``cap`` matches' keys first,
    from ``ix_users_email_pattern`` alone (it includes ``created_at`` and ``id``: an
    index-only scan), in a MATERIALIZED CTE so that the planner cannot trade it for a walk of
    the created_at order; the page is a top-N sort of those keys, then its users by key
    (migration 0038). Each row also carries how many matches the CTE holds: ``cap`` of them
    means there may be more, and the page is not the prefix's (the caller pages otherwise)."""
    found = select(User.id, User.created_at).where(condition).limit(cap).cte("matches")
    found = found.prefix_with("MATERIALIZED")
    backwards = (sort or "").endswith(":-1")
    by_key = [c.desc() if backwards else c.asc() for c in (found.c.created_at, found.c.id)]
    page = select(found.c.id).order_by(*by_key).limit(window[0]).offset(window[1]).subquery()
    matched = select(func.count()).select_from(found).scalar_subquery()
    return select(User, matched).join(page, page.c.id == User.id).order_by(*order)


def term_page(node: Term, sort: str | None) -> Select[User]:
    """A page of one app_metadata term in ``created_at`` order: a range of the terms' index
    ``(key, digest, created_at, user_id)`` in that order, each user read by its key, stopping
    after the page (migration 0037). A term's ``created_at`` is its user's, so the order is
    the users' (``created_at``, then ``id``)."""
    assert node.value is not None
    digest = metadata_value_digest(node.value)
    if digest is None:
        return select(User).where(false())
    term = UserMetadataTerm
    backwards = (sort or "").endswith(":-1")
    order: list[Any] = [term.created_at.desc(), term.user_id.desc()] if backwards else [
        term.created_at.asc(), term.user_id.asc()]  # fmt: skip
    return (
        select(User)
        .join(term, term.user_id == User.id)
        .where(term.key == node.field.removeprefix("app_metadata."), term.digest == digest)
        .order_by(*order)
    )


def connection_page(
    node: Term, sort: str | None, connections: Mapping[str, str], window: tuple[int, int]
) -> Select[User]:
    """A page of one connection's users in ``created_at`` order: a range of
    ``ix_identities_connection_page`` (``connection_id, user_created_at, user_id``; migration
    0038) read in order and stopping after the page, each user once (two upstream accounts at
    one connection are one user), then the page's users by key."""
    connection_id = connections.get(str(node.value))
    if connection_id is None:
        return select(User).where(false())
    backwards = (sort or "").endswith(":-1")
    held = (Identity.user_created_at, Identity.user_id)
    keys = (
        select(*held)
        .where(Identity.connection_id == connection_id)
        .distinct()
        .order_by(*[c.desc() if backwards else c.asc() for c in held])
        .limit(window[0])
        .offset(window[1])
        .subquery()
    )
    order = (keys.c.user_created_at, keys.c.user_id)
    return (
        select(User)
        .join(keys, keys.c.user_id == User.id)
        .order_by(*[c.desc() if backwards else c.asc() for c in order])
    )
