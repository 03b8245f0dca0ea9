"""The users search (idp.identity.search): the language's grammar and its errors (each naming
its position), limits, values that look like SQL or wildcards staying data, and the results,
order and pages on a small seeded set, on SQLite and (with IDP_TEST_DATABASE_URL) PostgreSQL,
the database built by idp's migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idp.connections.models import Connection, Identity
from idp.core import migrate
from idp.core.db import make_engine
from idp.core.errors import ValidationError
from idp.identity import search
from idp.identity.models import User, UserMetadataTerm
from idp.identity.search import search_from_args, search_users, statements, users_by_email
from idp.identity.search_query import BoolOp, Not, Term, parse_query
from tests.conftest import TEST_DB_URL, reset_database


def at(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


# --- the grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "tree"),
    [
        ("email:Jo@X.test", Term("email", "jo@x.test")),  # emails are compared normalised
        ('name:"Jane  Doe"', Term("name", "Jane  Doe")),
        ('name:"say \\"hi\\" \\\\"', Term("name", 'say "hi" \\')),
        ("name:Ja*", Term("name", "Ja", prefix=True)),
        ("name:*", Term("name", "", prefix=True)),
        ("user_id:auth0|a\\*b*", Term("user_id", "auth0|a*b", prefix=True)),
        ('name:"Ja*"', Term("name", "Ja*")),  # quoted: no wildcard
        ("email_verified:false", Term("email_verified", False)),
        ("identities.connection:google-oauth2", Term("identities.connection", "google-oauth2")),
        ("app_metadata.plan:gold", Term("app_metadata.plan", "gold")),
        ("app_metadata.vip:true", Term("app_metadata.vip", True)),
        ('app_metadata.vip:"true"', Term("app_metadata.vip", "true")),
        ("app_metadata.n:1.0", Term("app_metadata.n", 1)),
        ("app_metadata.n:-2.5e1", Term("app_metadata.n", -25)),
        ("app_metadata.zip:01234", Term("app_metadata.zip", "01234")),  # not a JSON number
        ("created_at:2026-01-15", Term("created_at", low=at("2026-01-15"), high=at("2026-01-16"))),
        (
            "created_at:2026-01-15T10:00:00+01:00",
            Term("created_at", low=at("2026-01-15T09:00:00"), high=at("2026-01-15T09:00:01")),
        ),
        (
            "updated_at:[2026-01-01 TO 2026-01-31]",
            Term("updated_at", low=at("2026-01-01"), high=at("2026-02-01")),
        ),
        (
            "created_at:{2026-01-01 TO 2026-01-31}",
            Term("created_at", low=at("2026-01-02"), high=at("2026-01-31")),
        ),
        ("created_at:[* TO 2026-01-31T12:00:00Z}", Term("created_at", high=at("2026-01-31T12:00"))),
        ("logins_count:{10 TO *]", Term("logins_count", low=11)),
        ("logins_count:[ 1 TO 3 ]", Term("logins_count", low=1, high=4)),
        ("logins_count:7", Term("logins_count", low=7, high=8)),
        ("", None),
        ("   ", None),
    ],
)
def test_each_construct_parses_to_its_tree(q: str, tree: Any) -> None:
    assert parse_query(q) == tree


def test_not_binds_tighter_than_and_and_and_tighter_than_or() -> None:
    a, b, c = Term("name", "a"), Term("name", "b"), Term("name", "c")
    assert parse_query("name:a OR name:b AND NOT name:c") == BoolOp(
        "OR", (a, BoolOp("AND", (b, Not(c))))
    )
    assert parse_query("(name:a OR name:b) AND name:c") == BoolOp("AND", (BoolOp("OR", (a, b)), c))
    assert parse_query("NOT (name:a)AND(name:b)") == BoolOp("AND", (Not(a), b))
    assert parse_query("name:a OR name:b OR name:c") == BoolOp("OR", (a, b, c))


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("email", "expected ':' after 'email' (terms are field:value) at position 5"),
        ("email:", "expected a value at position 6"),
        ("email: x", "expected a value at position 6"),
        (
            "bogus:x",
            "unknown field 'bogus' (fields: email, name, user_id, email_verified, identities.connection, app_metadata.KEY, created_at, updated_at, logins_count) at position 0",
        ),
        (
            "app_metadata.:x",
            "unknown field 'app_metadata.' (fields: email, name, user_id, email_verified, identities.connection, app_metadata.KEY, created_at, updated_at, logins_count) at position 0",
        ),
        (
            'app_metadata.a"b:x',
            "expected ':' after 'app_metadata.a' (terms are field:value) at position 14",
        ),
        ("john", "expected ':' after 'john' (terms are field:value) at position 4"),
        ("name:a name:b", "expected AND or OR, found 'n' at position 7"),
        ("name:a and name:b", "expected AND or OR, found 'a' at position 7"),
        ("name:a AND", "expected a field name, found the end at position 10"),
        ("name:a)", "expected no ')' here: unbalanced parenthesis, found ')' at position 6"),
        ("(name:a", "expected ')' closing the '(' at position 0 at position 7"),
        ("()", "expected a field name, found ')' at position 1"),
        ('name:"abc', "unterminated quoted value starting at position 5"),
        ("name:a*b", "'*' only ends a value (quote it to search for it) at position 6"),
        ("name:a?", "'?' wildcards are not supported (quote it to search for it) at position 6"),
        (
            "name:[a TO b]",
            "name takes no range (ranges: created_at, updated_at, logins_count) at position 5",
        ),
        (
            "created_at:2026-1-5",
            "created_at takes a date (YYYY-MM-DD) or an ISO 8601 date-time, not '2026-1-5' at position 11",
        ),
        (
            "created_at:2026-02-30",
            "created_at takes a date (YYYY-MM-DD) or an ISO 8601 date-time, not '2026-02-30' at position 11",
        ),
        (
            "created_at:9999-12-31",
            "created_at takes a date (YYYY-MM-DD) or an ISO 8601 date-time, not '9999-12-31' at position 11",
        ),
        ("created_at:2026*", "created_at takes no wildcard at position 11"),
        ("created_at:[2026-01-01 2026-02-01]", "expected TO in the range at position 23"),
        (
            "created_at:[2026-01-01 TO 2026-02-01",
            "expected ']' or '}' closing the range at position 36",
        ),
        ("created_at:[x* TO *]", "a range bound is a value or '*' at position 12"),
        ("logins_count:-1", "logins_count takes a whole number, not '-1' at position 13"),
        ("logins_count:[1 TO 2.5]", "logins_count takes a whole number, not '2.5' at position 19"),
        ("email_verified:yes", "email_verified is true or false, not 'yes' at position 15"),
        (
            "email_verified:t*",
            "email_verified takes no wildcard (prefixes: email, name, user_id) at position 15",
        ),
        (
            "app_metadata.plan:go*",
            "app_metadata.plan takes no wildcard (prefixes: email, name, user_id) at position 18",
        ),
        (
            "identities.connection:goo*",
            "identities.connection takes no wildcard (prefixes: email, name, user_id) at position 22",
        ),
        ("app_metadata.n:1e999", "'1e999' is out of range for a number at position 15"),
    ],
)
def test_errors_name_what_and_where(q: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_query(q)
    assert str(error.value) == f"q: {message}"


def test_length_depth_and_terms_are_bounded() -> None:
    with pytest.raises(ValidationError, match=r"^q is longer than 2000 characters$"):
        parse_query("name:" + "a" * 1996)
    assert parse_query("name:" + "a" * 1995) == Term("name", "a" * 1995)
    assert parse_query("(" * 10 + "name:a" + ")" * 10) == Term("name", "a")
    with pytest.raises(ValidationError, match=r"^q: nested deeper than 10 at position 10$"):
        parse_query("(" * 11 + "name:a" + ")" * 11)
    with pytest.raises(ValidationError, match=r"^q: nested deeper than 10 at position 40$"):
        parse_query("NOT " * 11 + "name:a")
    # far deeper than Python's recursion limit: refused by the depth limit, not a crash
    with pytest.raises(ValidationError, match="nested deeper than 10"):
        parse_query("(" * 1990)
    assert isinstance(parse_query(" OR ".join(["name:a"] * 50)), BoolOp)
    with pytest.raises(ValidationError, match=r"^q: more than 50 terms at position 500$"):
        parse_query(" OR ".join(["name:a"] * 51))


INJECTIONS = [
    "x' OR '1'='1",
    'x"; DROP TABLE users; --',
    "') OR 1=1 --",
    "%",
    "_",
    "\\",
    '$."x"',
]


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_values_are_bound_parameters_never_sql(text: str, dialect: Any) -> None:
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for field in ("name", "email", "app_metadata.k", "identities.connection"):
        escaped = "".join("\\" + char for char in text)  # a word, every character escaped
        node = parse_query(f"{field}:{quoted} OR name:{escaped}* OR email:{escaped}*")
        assert node.operands[1] == Term("name", text, prefix=True)  # type: ignore[union-attr]
        rows, count = statements(node, None, 0, 10, dialect.name, {text: "con_x"})
        for statement in (rows, count):
            sql = str(statement.compile(dialect=dialect))
            assert "DROP" not in sql and "1=1" not in sql and "'" not in sql, sql


# --- results on a seeded set, on each database ----------------------------------------------

USERS: list[dict[str, Any]] = [
    # id, email, name, verified, created, logins, app_metadata, connections
    dict(id="usr_1", email="alice@example.com", name="Alice Smith", email_verified=True,
         created_at=at("2026-01-05T08:00"), logins_count=0,
         app_metadata={"plan": "pro", "vip": True, "n": 1}, connections=["database"]),
    dict(id="usr_2", email="bob@example.com", name="Bob Jones", email_verified=False,
         created_at=at("2026-01-31T23:59:59"), logins_count=5,
         app_metadata={"plan": "free", "n": 1.0}, connections=["database", "google-oauth2"]),
    dict(id="usr_3", email="alicia@example.org", name="Alicia Keys", email_verified=True,
         created_at=at("2026-02-01T00:00:00"), logins_count=10,
         app_metadata={"plan": "true", "vip": False}, connections=["google-oauth2"]),
    dict(id="usr_4", email="o'brien@example.com", name="Conan O'Brien", email_verified=True,
         created_at=at("2025-12-31T12:00"), logins_count=11,
         app_metadata={"plan": ["pro"], "n": "1"}, connections=["database"]),
    dict(id="usr_5", email="per%cent_x@example.com", name=None, email_verified=False,
         created_at=at("2026-03-01T00:00"), logins_count=100,
         app_metadata={"plan": "PRO", "nested": {"plan": "pro"}}, connections=["acme"]),
    dict(id="usr_6", email="st*r[x]?@example.com", name="Robert'); DROP TABLE users;--",
         email_verified=True, created_at=at("2026-01-05T08:00"), logins_count=3,
         app_metadata={}, connections=[]),
]  # fmt: skip

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not TEST_DB_URL.startswith("postgresql"), reason="IDP_TEST_DATABASE_URL names no PostgreSQL"))]  # fmt: skip


@pytest.fixture(scope="module", params=DATABASES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'idp.sqlite3'}"
    else:
        url = TEST_DB_URL
    reset_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        for name, strategy in (("google-oauth2", "google-oauth2"), ("acme", "samlp")):
            session.add(Connection(id=f"con_{name}", name=name, strategy=strategy, options={},
                                   position=1, created_at=0, updated_at=0))  # fmt: skip
        for row in USERS:
            values = {k: v for k, v in row.items() if k != "connections"}
            session.add(User(**values, updated_at=row["created_at"] + 3600, password_hash=None,
                             user_metadata={}, profile={}))  # fmt: skip
        session.flush()  # no relationship orders the rows: users and connections first
        for n, row in enumerate(USERS):
            for c, connection in enumerate(row["connections"]):
                session.add(Identity(id=f"idn_{n}_{c}", user_id=row["id"], provider=connection,
                                     connection_id=f"con_{connection}", upstream_user_id=row["id"],
                                     profile={}, created_at=0,
                                     user_created_at=row["created_at"]))  # fmt: skip
        # a second upstream account of usr_2 at one connection: still one user in a page
        session.add(Identity(id="idn_1_2", user_id="usr_2", provider="google-oauth2",
                             connection_id="con_google-oauth2", upstream_user_id="usr_2-second",
                             profile={}, created_at=0,
                             user_created_at=USERS[1]["created_at"]))  # fmt: skip
    yield engine
    engine.dispose()
    reset_database(url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
        session.rollback()


@contextmanager
def statements_sent(session: Session) -> Iterator[list[str]]:
    """The SQL ``session``'s engine sends meanwhile, in order."""
    sent: list[str] = []
    listen = lambda *args: sent.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)


def ids(session: Session, q: str, **options: Any) -> list[str]:
    return [u.id for u in search_users(session, q, **options).users]


def found(session: Session, q: str) -> set[str]:
    return set(ids(session, q, per_page=100))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("email:alice@example.com", {"usr_1"}),
        ("email:ALICE@Example.COM", {"usr_1"}),
        ('email:" bob@example.com "', {"usr_2"}),
        ("email:alice", set()),
        ("email:ali*", {"usr_1", "usr_3"}),
        ("email:ALI*", {"usr_1", "usr_3"}),
        ("email:o'b*", {"usr_4"}),
        ("email:per%*", {"usr_5"}),  # % and _ are data, not LIKE's wildcards
        ("email:per%cent_*", {"usr_5"}),
        ("email:per_*", set()),
        ("email:%*", set()),
        ("email:st\\*r[x]\\?*", {"usr_6"}),  # GLOB's *, [ and ? are data too
        ("email:s*", {"usr_6"}),
        ("email:st\\?*", set()),
        ('name:"Alice Smith"', {"usr_1"}),
        ("name:alice*", set()),  # names are case-sensitive
        ("name:Ali*", {"usr_1", "usr_3"}),
        ("NOT name:Ali*", {"usr_2", "usr_4", "usr_5", "usr_6"}),  # usr_5 has no name
        ("NOT NOT name:Ali*", {"usr_1", "usr_3"}),
        ("NOT name:*", {"usr_5"}),  # a bare * asks for any value
        ('name:"Robert\'); DROP TABLE users;--"', {"usr_6"}),
        ("user_id:usr_1", {"usr_1"}),
        ("user_id:usr*", {u["id"] for u in USERS}),
        ("email_verified:true", {"usr_1", "usr_3", "usr_4", "usr_6"}),
        ("email_verified:false", {"usr_2", "usr_5"}),
        ("identities.connection:google-oauth2", {"usr_2", "usr_3"}),
        ("identities.connection:nope", set()),
        ("NOT identities.connection:database", {"usr_3", "usr_5", "usr_6"}),
        ("app_metadata.plan:pro", {"usr_1"}),  # not "PRO", not ["pro"], not nested
        ('app_metadata.plan:"true"', {"usr_3"}),
        ("app_metadata.plan:true", set()),
        ("app_metadata.vip:true", {"usr_1"}),
        ("app_metadata.vip:false", {"usr_3"}),
        ("NOT app_metadata.vip:true", {"usr_2", "usr_3", "usr_4", "usr_5", "usr_6"}),
        ("app_metadata.n:1", {"usr_1", "usr_2"}),  # 1 and 1.0, not "1"
        ('app_metadata.n:"1"', {"usr_4"}),
        ("app_metadata.missing:x", set()),
        ("created_at:2026-01-31", {"usr_2"}),
        ("created_at:[2026-01-01 TO 2026-01-31]", {"usr_1", "usr_2", "usr_6"}),
        ("created_at:{2026-01-31 TO *]", {"usr_3", "usr_5"}),
        ("created_at:[* TO 2026-02-01}", {"usr_1", "usr_2", "usr_4", "usr_6"}),
        ("created_at:2026-02-01T00:00:00Z", {"usr_3"}),
        ("created_at:2026-02-01T01:00:00+01:00", {"usr_3"}),
        ("created_at:[2026-02-01 TO 2026-01-01]", set()),
        ("updated_at:[2026-01-05T09:00:00 TO 2026-01-05T09:00:00]", {"usr_1", "usr_6"}),
        ("logins_count:5", {"usr_2"}),
        ("logins_count:[10 TO *]", {"usr_3", "usr_4", "usr_5"}),
        ("logins_count:{10 TO *]", {"usr_4", "usr_5"}),
        ("logins_count:[* TO 10}", {"usr_1", "usr_2", "usr_6"}),
        ("email:ali* AND email_verified:true AND logins_count:[1 TO *]", {"usr_3"}),
        ("email:bob* OR identities.connection:acme", {"usr_2", "usr_5"}),
        ("identities.connection:google-oauth2 AND NOT identities.connection:database", {"usr_3"}),
        ("(email:bob* OR email:ali*) AND NOT (app_metadata.plan:pro)", {"usr_2", "usr_3"}),
        ("", {u["id"] for u in USERS}),
    ],
)
@pytest.mark.parametrize("rare_below", [0, 2000], ids=["walk the order", "drive from holders"])
def test_results(
    session: Session, q: str, expected: set[str], rare_below: int, monkeypatch: Any
) -> None:
    # on SQLite a page over a holding (a connection, an app_metadata value) either walks the
    # sort's order probing the holders' index (EXISTS) or reads the holders first (IN)
    monkeypatch.setattr(search, "RARE_HOLDERS", rare_below)
    assert found(session, q) == expected
    page = search_users(session, q, include_totals=True)
    assert page.total == len(expected)  # the count's statement agrees with the page's


@pytest.mark.parametrize("rare_below", [0, 2, 3])
def test_a_page_drives_from_the_holders_only_when_few_hold_the_value(
    session: Session, rare_below: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr(search, "RARE_HOLDERS", rare_below)
    q = "app_metadata.n:1 OR identities.connection:google-oauth2"  # 2 users each
    with statements_sent(session) as sent:
        assert ids(session, q, sort="created_at:-1") == ["usr_3", "usr_2", "usr_1"]
    page = sent[-1]
    driven = session.get_bind().dialect.name == "sqlite" and rare_below > 2
    assert ("EXISTS" not in page) == driven and (page.count(" IN (") == 2) == driven


@pytest.mark.parametrize("sort", [None, "created_at:1", "created_at:-1"])
def test_a_lone_app_metadata_term_pages_from_its_index_in_the_users_order(
    session: Session, sort: str | None
) -> None:
    """Migration 0037: a page of one term in created_at order reads the terms' index in that
    order (their created_at is their user's), and pages as the users' order does."""
    q = "app_metadata.n:1"  # usr_1 and usr_2
    expected = [u for u in ids(session, "", sort=sort) if u in {"usr_1", "usr_2"}]
    with statements_sent(session) as sent:
        assert ids(session, q, sort=sort) == expected
    assert "ORDER BY user_metadata_terms.created_at" in sent[-1] and "EXISTS" not in sent[-1]
    pages = [ids(session, q, sort=sort, page=n, per_page=1) for n in (0, 1, 2)]
    assert pages == [expected[:1], expected[1:], []]
    stale = (
        select(func.count())
        .select_from(UserMetadataTerm)
        .join(User, User.id == UserMetadataTerm.user_id)
        .where(or_(UserMetadataTerm.created_at.is_(None),
                   UserMetadataTerm.created_at != User.created_at))
    )  # fmt: skip
    assert session.scalar(stale) == 0  # the flush wrote each term with its user's


@pytest.mark.parametrize("sort", [None, "created_at:1", "created_at:-1"])
def test_a_lone_connection_pages_from_its_index_in_the_users_order(
    session: Session, sort: str | None
) -> None:
    """Migration 0038: a page of one connection in created_at order is one range of
    ix_identities_connection_page (its user_created_at is its user's), each user once though
    usr_2 holds two identities there, paged as the users' order is."""
    q = "identities.connection:google-oauth2"  # usr_2 (twice) and usr_3
    expected = [u for u in ids(session, "", sort=sort) if u in {"usr_2", "usr_3"}]
    with statements_sent(session) as sent:
        assert ids(session, q, sort=sort) == expected
    assert "ORDER BY identities.user_created_at" in sent[-1] and "EXISTS" not in sent[-1]
    pages = [search_users(session, q, sort=sort, page=n, per_page=1, include_totals=True)
             for n in (0, 1, 2)]  # fmt: skip
    assert [[u.id for u in p.users] for p in pages] == [expected[:1], expected[1:], []]
    assert {p.total for p in pages} == {2}
    assert ids(session, "identities.connection:nobody-has-it", sort=sort) == []


def test_every_identity_carries_its_users_created_at(session: Session) -> None:
    stale = (
        select(func.count())
        .select_from(Identity)
        .join(User, User.id == Identity.user_id)
        .where(Identity.user_created_at != User.created_at)
    )
    assert session.scalar(stale) == 0


@pytest.mark.parametrize("rare_below", [0, 1, 2, 1000])
@pytest.mark.parametrize("sort", [None, "created_at:-1", "name:1", "email:-1"])
@pytest.mark.parametrize("prefix", ["ali", "o'", "per%", "st*r[", "nobody", ""])
def test_an_email_prefix_page_is_the_same_whichever_way_it_is_read(
    session: Session, sort: str | None, prefix: str, rare_below: int, monkeypatch: Any
) -> None:
    """On PostgreSQL a lone email prefix fewer than RARE_HOLDERS users match reads its page's
    keys from the pattern index first (migration 0038), in created_at order, in the statement
    that finds whether it is that rare (at most RARE_HOLDERS keys: as many, and the generic
    query pages it); the users, their order, the pages and the totals are the generic
    query's either way."""
    monkeypatch.setattr(search, "RARE_HOLDERS", rare_below)
    q = "email:" + prefix.replace("*", "\\*").replace("[", "\\[") + "*"
    everyone = ids(session, "", sort=sort)
    expected = [u for u in everyone if _email(u).startswith(prefix)]
    with statements_sent(session) as sent:
        assert ids(session, q, sort=sort) == expected
    keys_first = session.get_bind().dialect.name == "postgresql" and len(expected) < rare_below
    keys_first = keys_first and (sort or "created_at").startswith("created_at")
    assert ("MATERIALIZED" in sent[-1]) == keys_first, sent[-1]
    pages = [ids(session, q, sort=sort, page=n, per_page=1) for n in range(len(expected) + 1)]
    assert pages == [[u] for u in expected] + [[]]
    for n in (0, len(expected)):  # a page with the users, and the empty one past them
        assert search_users(session, q, sort=sort, page=n, include_totals=True).total == len(
            expected
        )


def _email(user_id: str) -> str:
    return next(str(u["email"]) for u in USERS if u["id"] == user_id)


def test_sql_looking_values_left_the_table_alone(session: Session) -> None:
    for text in INJECTIONS:
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for field in ("name", "email", "user_id", "app_metadata.plan", "identities.connection"):
            assert found(session, f"{field}:{quoted}") == set()
    assert session.scalar(select(func.count()).select_from(User)) == len(USERS)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["usr_4", "usr_1", "usr_6", "usr_2", "usr_3", "usr_5"]),  # created_at, then id
        ("created_at:1", ["usr_4", "usr_1", "usr_6", "usr_2", "usr_3", "usr_5"]),
        ("created_at:-1", ["usr_5", "usr_3", "usr_2", "usr_6", "usr_1", "usr_4"]),
        ("updated_at:-1", ["usr_5", "usr_3", "usr_2", "usr_6", "usr_1", "usr_4"]),
        ("logins_count:-1", ["usr_5", "usr_4", "usr_3", "usr_2", "usr_6", "usr_1"]),
        ("email:1", ["usr_1", "usr_3", "usr_2", "usr_4", "usr_5", "usr_6"]),
        ("user_id:-1", ["usr_6", "usr_5", "usr_4", "usr_3", "usr_2", "usr_1"]),
        ("name:1", ["usr_1", "usr_3", "usr_2", "usr_4", "usr_6", "usr_5"]),  # no name: last
        ("name:-1", ["usr_6", "usr_4", "usr_2", "usr_3", "usr_1", "usr_5"]),
    ],
)
def test_sort(session: Session, sort: str | None, expected: list[str]) -> None:
    assert ids(session, "", sort=sort) == expected


def test_pages_and_totals(session: Session) -> None:
    every = ids(session, "")
    pages = [search_users(session, "", page=n, per_page=4, include_totals=True) for n in (0, 1, 2)]
    assert [u.id for p in pages for u in p.users] == every
    assert [(p.start, p.limit, p.total, len(p.users)) for p in pages] == [
        (0, 4, 6, 4), (4, 4, 6, 2), (8, 4, 6, 0)
    ]  # fmt: skip
    assert search_users(session, "email:ali*").total is None
    assert len(search_users(session, "", page=9, per_page=100).users) == 0  # the 1000th result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"per_page": "0"}, "per_page must be between 1 and 100"),
        ({"per_page": "101"}, "per_page must be between 1 and 100"),
        ({"per_page": "x"}, "per_page must be a whole number"),
        ({"page": "-1"}, "page must be a whole number"),
        ({"page": "10", "per_page": "100"}, "only the first 1000 results can be paged to"),
        ({"page": "20"}, "only the first 1000 results can be paged to"),
        ({"include_totals": "yes"}, "include_totals must be true or false"),
        ({"search_engine": "v2"}, "search_engine must be v3"),
        (
            {"sort": "password_hash:1"},
            "sort must be FIELD:1 or FIELD:-1 with FIELD one of email, name, user_id, created_at, updated_at, logins_count",
        ),
        (
            {"sort": "email:asc"},
            "sort must be FIELD:1 or FIELD:-1 with FIELD one of email, name, user_id, created_at, updated_at, logins_count",
        ),
        ({"q": "email:"}, "q: expected a value at position 6"),
    ],
)
def test_arguments_are_checked(session: Session, args: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        search_from_args(session, args)
    assert str(error.value) == message


def test_arguments_as_auth0_names_them(session: Session) -> None:
    args = {"q": "email_verified:true", "sort": "logins_count:-1", "page": "1", "per_page": "2",
            "include_totals": "true", "search_engine": "v3"}  # fmt: skip
    page = search_from_args(session, args)
    assert ([u.id for u in page.users], page.start, page.limit, page.total) == (
        ["usr_6", "usr_1"], 2, 2, 4
    )  # fmt: skip
    assert len(search_from_args(session, {}).users) == len(USERS)


def test_users_by_email(session: Session) -> None:
    assert [u.id for u in users_by_email(session, "Alice@Example.com ")] == ["usr_1"]
    assert [u.id for u in users_by_email(session, "o'brien@example.com")] == ["usr_4"]
    assert users_by_email(session, "alice@example.co") == []
    assert users_by_email(session, "ali%") == []  # exact: no pattern
    with pytest.raises(ValidationError, match=r"^email is required$"):
        users_by_email(session, "  ")


def test_the_migration_made_the_indexes(engine: Engine) -> None:
    from sqlalchemy import inspect

    names = {i["name"] for i in inspect(engine).get_indexes("users")}
    names |= {i["name"] for i in inspect(engine).get_indexes("identities")}
    assert {"ix_users_created_at_id", "ix_identities_connection_id_user_id",
            "ix_identities_connection_page"} <= names  # fmt: skip
    assert ("ix_users_email_pattern" in names) == (engine.dialect.name == "postgresql")
    terms = {i["name"] for i in inspect(engine).get_indexes("user_metadata_terms")}
    assert "ix_user_metadata_terms_page" in terms
