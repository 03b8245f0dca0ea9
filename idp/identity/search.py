"""The users search behind ``GET /api/v2/users?q=``: a small Lucene-like language, the subset
of Auth0's user search v3 listed here, parsed by hand and compiled to one SQLAlchemy ``Select``
whose every value is a bound parameter.

``q``: terms ``field:value``, ``field:"quoted value"``, prefixes ``field:val*``, ranges
``field:[a TO b]`` (``{``/``}`` exclusive, ``*`` open), ``AND``, ``OR``, ``NOT`` and parentheses
(idp.identity.search_query has the grammar and the limits: 2000 characters, 10 levels, 50
terms). Errors are ``ValidationError`` naming the position (characters from 0), for a 400.

Fields:

- ``email`` (exact or prefix, case-insensitive: emails are stored lowercase), ``name`` (exact or
  prefix, case-sensitive), ``user_id`` (exact or prefix); ``name:*``: has a name;
- ``email_verified``: ``true`` or ``false``;
- ``identities.connection``: the user has an identity through the connection of that name;
- ``app_metadata.KEY`` (KEY of letters, digits, ``_`` and ``-``): exact match of that top-level
  key. Unquoted ``true``/``false`` match JSON booleans, an unquoted JSON number matches a number
  (``1`` matches ``1.0``), anything else, or a quoted value, matches a string;
- ``created_at``, ``updated_at``: a date ``2026-01-15`` (that whole UTC day) or an ISO 8601
  date-time (that second; UTC unless it says otherwise), or a range of them;
- ``logins_count``: an integer, or a range.

A value stands for an interval: a day, a second, a count. In a range ``[`` and ``]`` include
their bound's interval, ``{`` and ``}`` exclude it, ``*`` is open:
``created_at:[2026-01-01 TO 2026-01-31]`` is all of January, ``logins_count:{10 TO *]`` is 11
or more. ``last_login`` is not searchable: idp does not store it.

``sort=FIELD:1`` (ascending) or ``FIELD:-1`` over email, name, user_id, created_at, updated_at,
logins_count (default ``created_at:1``; ties broken by user_id); ``page`` from 0, ``per_page``
1-100 (default 50), and as in Auth0 only the first 1000 results can be paged to;
``include_totals`` adds the number of matches. docs/design-notes.md says which indexes serve it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from idp.connections.models import Connection, Identity
from idp.core.errors import ValidationError
from idp.identity import search_pages as pages
from idp.identity.models import User, UserMetadataTerm, metadata_value_digest
from idp.identity.search_query import COUNT, BoolOp, Node, Not, Term, parse_query
from idp.identity.service import normalise_email

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_RESULTS = 1000  # Auth0: only the first 1000 results of a search can be paged to

STRINGS: dict[str, InstrumentedAttribute[Any]] = {
    "email": User.email,
    "name": User.name,
    "user_id": User.id,
}
INTERVALS: dict[str, InstrumentedAttribute[int]] = {
    "created_at": User.created_at,
    "updated_at": User.updated_at,
    "logins_count": User.logins_count,
}
SORTS: dict[str, InstrumentedAttribute[Any]] = {**STRINGS, **INTERVALS}
INDEXED_PREFIXES = ("email", "user_id")  # B-tree prefixes (GLOB on SQLite)
RARE_HOLDERS = 2000  # SQLite: fewer holders than this and a page drives from their index


@dataclass(frozen=True)
class UsersPage:
    """One page of a search: ``total`` only when totals were asked for."""

    users: list[User]
    start: int
    limit: int
    total: int | None


def _prefix(column: InstrumentedAttribute[Any], text: str, dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``text``, in a form each database serves from a B-tree: GLOB on
    SQLite (its LIKE folds case, which a BINARY index cannot serve), LIKE on PostgreSQL (with
    backslash, its default escape; the ``text_pattern_ops`` index of migration 0018 serves
    it). Wildcard characters in ``text`` are escaped: they stay data."""
    if dialect == "sqlite":
        pattern = re.sub(r"([*?\[])", r"[\1]", text) + "*"
        return column.op("GLOB")(pattern)
    return column.like(re.sub(r"([\\%_])", r"\\\1", text) + "%")


def _is_holding(field: str) -> bool:
    """A term answered by another table's index of the users holding it."""
    return field == "identities.connection" or field.startswith("app_metadata.")


def _holders(node: Term, connections: Mapping[str, str]) -> Select[str] | None:
    """The ids of the users holding an identity or an app_metadata term, read from one index
    range (``ix_identities_connection_id_user_id``, ``ix_user_metadata_terms_lookup``);
    None when nobody can (an unknown connection, a value no term indexes)."""
    if node.field == "identities.connection":
        connection_id = connections.get(str(node.value))
        if connection_id is None:
            return None
        return select(Identity.user_id).where(Identity.connection_id == connection_id)
    assert node.value is not None
    digest = metadata_value_digest(node.value)
    if digest is None:
        return None
    key = node.field.removeprefix("app_metadata.")
    return select(UserMetadataTerm.user_id).where(
        UserMetadataTerm.key == key, UserMetadataTerm.digest == digest
    )


def _held(node: Term, c: _Context) -> ColumnElement[bool]:
    """A count, or a page over a rare holding, drives from the holders' index (``IN``); a
    page over a common one walks the sort's index and probes the holders' index per user
    until it is full (``EXISTS``), never reading what it does not return."""
    holders = _holders(node, c.connections)
    if holders is None:
        return false()
    if c.count or node in c.rare:
        return User.id.in_(holders)
    owner = Identity.user_id if node.field == "identities.connection" else UserMetadataTerm.user_id
    return holders.where(owner == User.id).exists()


@dataclass(frozen=True)
class _Context:
    """How terms compile: ``connections`` (name -> id of those the query names); ``count``
    for the count's statement; ``rare``: terms to drive a page from (see ``_rare``)."""

    dialect: str
    connections: Mapping[str, str]
    count: bool = False
    rare: frozenset[Term] = frozenset()
    sort_field: str = "created_at"


def _condition(node: Node, c: _Context) -> Any:
    """SQL for ``node``; never NULL (a missing value is false), so NOT means what it says."""
    if isinstance(node, BoolOp):
        parts = [_condition(n, c) for n in node.operands]
        return and_(*parts) if node.op == "AND" else or_(*parts)
    if isinstance(node, Not):
        return not_(_condition(node.operand, c))
    if node.field in INTERVALS:
        column = INTERVALS[node.field]
        low = true() if node.low is None else column >= node.low
        return and_(low, true() if node.high is None else column < node.high)
    if node.field == "email_verified":
        return User.email_verified.is_(true() if node.value else false())
    if _is_holding(node.field):
        return _held(node, c)
    string: Any = STRINGS[node.field]
    if node.prefix and _walks(node, c):  # ``x || ''`` is no column: SQLite walks the order
        string = string.concat("")
    matches = _prefix(string, str(node.value), c.dialect) if node.prefix else string == node.value
    return and_(string.is_not(None), matches) if node.field == "name" else matches


def _walks(node: Term, c: _Context) -> bool:
    """SQLite: a page over a common prefix of an indexed column walks the sort's index and
    tests each row, rather than reading every match from the column's index and sorting
    them (``email:jo*``, 8 % of the users: 15 ms the second way, under 1 ms the first)."""
    return (
        c.dialect == "sqlite" and not c.count and node.field in INDEXED_PREFIXES
        and node not in c.rare and c.sort_field != node.field
    )  # fmt: skip


def _holding_terms(node: Node | None, prefixes: bool = False) -> list[Term]:
    """The holding terms of ``node`` (and with ``prefixes``, its indexed prefix terms)."""
    if isinstance(node, BoolOp):
        return [t for n in node.operands for t in _holding_terms(n, prefixes)]
    if isinstance(node, Not):
        return _holding_terms(node.operand, prefixes)
    if node is None:
        return []
    prefix = prefixes and node.prefix and node.field in INDEXED_PREFIXES
    return [node] if _is_holding(node.field) or prefix else []


def _rare(session: Session, node: Node | None, connections: Mapping[str, str]) -> frozenset[Term]:
    """SQLite only: the holding and indexed prefix terms fewer than ``RARE_HOLDERS`` users
    match, each counted from its index up to that cap. SQLite's planner knows an index's
    average, not how many match this value: walking the order for a value 1 user in 100,000
    holds reads them all, driving from a value 70 % hold sorts 70,000 rows. PostgreSQL's
    statistics choose alone."""
    rare = set()
    for term in _holding_terms(node, prefixes=True):
        holders: Select[Any] | None
        if term.prefix:
            column = STRINGS[term.field]
            holders = select(column).where(_prefix(column, str(term.value), "sqlite"))
        else:
            holders = _holders(term, connections)
        if holders is None:
            continue
        capped = holders.distinct().limit(RARE_HOLDERS).subquery()  # users, not identities
        if (session.scalar(select(func.count()).select_from(capped)) or 0) < RARE_HOLDERS:
            rare.add(term)
    return frozenset(rare)


def _rare_email_prefix_page(
    session: Session, node: Node | None, sort: str | None, page: int, per_page: int,
    include_totals: bool,
) -> UsersPage | None:  # fmt: skip
    """PostgreSQL: the page of a lone email prefix in created_at order when fewer than
    ``RARE_HOLDERS`` users match, read from ``ix_users_email_pattern`` in one statement
    (:func:`pages.keys_first`); None for a prefix as common as that, which the generic query
    pages. The planner estimates a prefix from a histogram of 100 buckets: on a million users
    ``james.s*`` (1,894 matches) was taken for 10,000 and the page walked the created_at
    order through 26,000 users. (The matches were counted up to the cap first, then read
    again for the page: one pass of the index range now.)"""
    lone_prefix = isinstance(node, Term) and node.prefix and node.field == "email"
    if not lone_prefix or (sort or "created_at").partition(":")[0] != "created_at":
        return None
    if RARE_HOLDERS < 1:
        return None
    assert isinstance(node, Term)
    condition = _prefix(User.email, str(node.value), "postgresql")
    window = (per_page, page * per_page)
    rows = session.execute(pages.keys_first(sort, _order(sort), condition, window, RARE_HOLDERS))
    found = rows.all()
    if found:
        matched = int(found[0][1])
    elif page == 0:
        matched = 0  # an empty first page: the CTE found nothing, so nothing matches
    else:  # past the end (or a common prefix): how many, up to the cap
        capped = select(User.id).where(condition).limit(RARE_HOLDERS).subquery()
        matched = session.scalar(select(func.count()).select_from(capped)) or 0
    if matched >= RARE_HOLDERS:
        return None
    users = [row[0] for row in found]
    return UsersPage(users, window[1], per_page, matched if include_totals else None)


def _order(sort: str | None) -> list[Any]:
    field, _, direction = (sort or "created_at:1").partition(":")
    if field not in SORTS or direction not in ("1", "-1"):
        raise ValidationError(
            f"sort must be FIELD:1 or FIELD:-1 with FIELD one of {', '.join(SORTS)}"
        )
    order = [SORTS[field].asc() if direction == "1" else SORTS[field].desc()]
    if field == "name":
        order = [order[0].nulls_last()]
    if field not in ("email", "user_id"):  # unique already
        order.append(User.id.asc() if direction == "1" else User.id.desc())
    return order


def statements(
    node: Node | None,
    sort: str | None,
    page: int,
    per_page: int,
    dialect: str,
    connections: Mapping[str, str],
    rare: frozenset[Term] = frozenset(),
) -> tuple[Select[User], Select[int]]:
    """The page's SELECT and the count's for ``dialect`` ("sqlite", "postgresql");
    ``connections`` maps the connection names ``node`` uses to their ids; ``rare``: the
    holding terms a page drives from."""
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise ValidationError(f"per_page must be between 1 and {MAX_PER_PAGE}")
    if page < 0:
        raise ValidationError("page must be 0 or more")
    if (page + 1) * per_page > MAX_RESULTS:
        raise ValidationError(f"only the first {MAX_RESULTS} results can be paged to")
    rows, count = select(User).order_by(*_order(sort)), select(func.count()).select_from(User)
    window = (per_page, page * per_page)
    if node is not None:
        sort_field = (sort or "created_at").partition(":")[0]
        lone = node if isinstance(node, Term) else None
        count = count.where(_condition(node, _Context(dialect, connections, count=True)))
        if lone and _is_holding(lone.field):
            count = _count_holders(lone, connections)
        if lone and lone.field.startswith("app_metadata.") and sort_field == "created_at":
            rows = pages.term_page(lone, sort)
        elif lone and lone.field == "identities.connection" and sort_field == "created_at":
            return pages.connection_page(lone, sort, connections, window), count
        else:
            page_context = _Context(dialect, connections, rare=rare, sort_field=sort_field)
            rows = rows.where(_condition(node, page_context))
    return rows.limit(window[0]).offset(window[1]), count


def _count_holders(node: Term, connections: Mapping[str, str]) -> Select[int]:
    """A lone holding's count from its index alone: a term or an identity cannot outlive
    its user (``ON DELETE CASCADE``), so no user row is read (a user with two identities
    through one connection counts once)."""
    holders = _holders(node, connections)
    if holders is None:
        return select(func.count()).where(false())
    if node.field == "identities.connection":  # (connection_id, user_id) is an index: no sort
        return select(func.count(holders.distinct().subquery().c[0]))
    return select(func.count()).select_from(holders.subquery())  # one term per user and key


def search_users(
    session: Session,
    q: str | None = None,
    *,
    sort: str | None = None,
    page: int = 0,
    per_page: int = DEFAULT_PER_PAGE,
    include_totals: bool = False,
) -> UsersPage:
    """One page of the users ``q`` matches (see the module docstring)."""
    node = parse_query(q)
    names = {str(t.value) for t in _holding_terms(node) if t.field == "identities.connection"}
    connections: dict[str, str] = {}
    if names:  # by id, so that PostgreSQL's statistics see which connection (they know its size)
        query = select(Connection.name, Connection.id).where(Connection.name.in_(names))
        connections = {name: id_ for name, id_ in session.execute(query)}
    dialect = session.get_bind().dialect.name
    rare = _rare(session, node, connections) if dialect == "sqlite" else frozenset()
    rows, count = statements(node, sort, page, per_page, dialect, connections, rare)
    if dialect == "postgresql":  # after statements(): it checks page and per_page
        found = _rare_email_prefix_page(session, node, sort, page, per_page, include_totals)
        if found is not None:
            return found
    users = list(session.scalars(rows))
    total = session.scalar(count) if include_totals else None
    return UsersPage(users, page * per_page, per_page, total)


def _integer(args: Mapping[str, str], name: str, default: int) -> int:
    text = args.get(name)
    if text is None or text == "":
        return default
    if not COUNT.fullmatch(text):
        raise ValidationError(f"{name} must be a whole number")
    return int(text)


def search_from_args(session: Session, args: Mapping[str, str]) -> UsersPage:
    """``search_users`` from a query string's arguments, as Auth0 names them (``q``, ``sort``,
    ``page``, ``per_page``, ``include_totals``, ``search_engine`` v3 or absent)."""
    if args.get("search_engine", "v3") != "v3":
        raise ValidationError("search_engine must be v3")
    totals = args.get("include_totals", "false")
    if totals not in ("true", "false"):
        raise ValidationError("include_totals must be true or false")
    return search_users(
        session,
        args.get("q"),
        sort=args.get("sort") or None,
        page=_integer(args, "page", 0),
        per_page=_integer(args, "per_page", DEFAULT_PER_PAGE),
        include_totals=totals == "true",
    )


def users_by_email(session: Session, email: str) -> list[User]:
    """Auth0's ``GET /users-by-email``: the users with exactly this email, compared as stored
    (normalised: trimmed, lowercase). A list, as Auth0's is; here at most one user."""
    normalised = normalise_email(email or "")
    if not normalised:
        raise ValidationError("email is required")
    return list(session.scalars(select(User).where(User.email == normalised)))
