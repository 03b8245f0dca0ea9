"""Benchmark the users search (``idp.identity.search``) on 100,000 users.

    .venv/bin/python bench/users_search.py [--users 100000] [--rounds 40] [--explain]

Target (issue 14): ``GET /api/v2/users?q=`` on 100,000 users, p50 under 20 ms. ``Target`` is
the one seam: ``RouteTarget`` (the default) sends the query-string arguments (``q``, ``sort``,
``include_totals``) to ``GET /api/v2/users`` of an idp app on the same database through its
WSGI interface in-process (Flask's test client: no socket, no server process), with a
``read:users`` token of a machine client, so the whole route is timed (the token check, the
query model, the search, the page's identities, the response model, JSON);
``--service`` times ``search_from_args(session, args)`` alone, as before the route existed.

Set-up: a fresh SQLite database in a temporary folder (and PostgreSQL when
``IDP_BENCH_DATABASE_URL`` names one: its ``public`` schema is dropped and recreated), idp's
migrations, then 100,000 users, their identities (every user one through ``database``, 20 %
one through ``google-oauth2``, 3 % through ``acme``, a samlp connection) and app_metadata
(``plan``: free 70 %, pro 25 %, enterprise 5 %; ``tenant``; 1 % ``vip: true``) with its
search terms (``user_metadata_terms``, as idp's flush writes them), written with
bulk INSERTs (executemany of Core inserts), then ANALYZE (PostgreSQL: VACUUM ANALYZE).

Each round runs every query once through the service and once as its **ceiling**: the very
statements the service sent (captured from SQLAlchemy, with their parameters) executed on the
DBAPI cursor of the same connection, no parsing, no compiling, no ORM. The ratio service /
ceiling is idp's own overhead on top of what the database needs; the primary-key lookup of one
user on the same cursor is printed as the floor. Queries and ceilings are interleaved within
every round (the machine drifts by more than these differences within a minute).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cpu import foreign_share, snapshot
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session

from idp.connections.models import Connection, Identity
from idp.core import migrate
from idp.core.db import make_engine
from idp.identity.models import User, UserMetadataTerm, metadata_terms
from idp.identity.search import search_from_args

TARGET_P50_MS = 20.0
TOTALS = ("false", "true")
NOISE_THRESHOLD = 0.10
START = 1_717_200_000  # 2024-06-01; users are created over two years from here
SPAN = 2 * 365 * 86400
FIRST_NAMES = (
    "james mary john patricia robert jennifer michael linda david elizabeth william barbara"
    " richard susan joseph jessica thomas sarah chris karen nina omar li wei"
)
LAST_NAMES = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez lopez wilson"
    " anderson thomas taylor moore jackson martin lee perez white harris"
)
FIRST, LAST = FIRST_NAMES.split(), LAST_NAMES.split()
DOMAINS = ("example.com", "example.org", "acme.test", "mail.test")
CONNECTIONS = {"google-oauth2": ("con_google", "google"), "acme": ("con_acme", "samlp")}

# (label, args): what an operator's tools ask for; {email} is a seeded user's address.
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("exact email", {"q": 'email:"{email}"'}),
    ("email prefix", {"q": "email:jo*"}),
    ("narrow email prefix", {"q": "email:nina.lee*"}),
    ("connection", {"q": "identities.connection:acme"}),
    ("app_metadata key", {"q": "app_metadata.plan:enterprise"}),
    ("app_metadata, common value", {"q": "app_metadata.plan:free"}),
    ("app_metadata, rare value, newest first", {"q": "app_metadata.vip:true",
                                                "sort": "created_at:-1"}),
    ("created_at range, newest first",
     {"q": "created_at:[2025-03-01 TO 2025-03-31]", "sort": "created_at:-1"}),
    ("combined", {"q": "identities.connection:google-oauth2 AND email_verified:true"
                       " AND created_at:[2026-01-01 TO *]"}),
    ("no q, newest first", {"q": "", "sort": "created_at:-1"}),
]  # fmt: skip


SEARCHED = re.compile(
    r"^\s*SELECT\b.*\b(users|identities|connections|user_metadata_terms)\b", re.S | re.I
)


class Target(Protocol):
    """Runs one search; returns how many users the page holds and the total."""

    def search(self, args: Mapping[str, str]) -> tuple[int, int | None]: ...


@dataclass
class ServiceTarget:
    session: Session

    def search(self, args: Mapping[str, str]) -> tuple[int, int | None]:
        page = search_from_args(self.session, args)
        self.session.expunge_all()  # a request's session starts empty
        return len(page.users), page.total


@dataclass
class RouteTarget:
    """``GET /api/v2/users`` through the app's WSGI interface, with a management token."""

    client: Any  # flask.testing.FlaskClient
    headers: dict[str, str]

    def search(self, args: Mapping[str, str]) -> tuple[int, int | None]:
        resp = self.client.get("/api/v2/users", query_string=dict(args), headers=self.headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        data = resp.get_json()
        if isinstance(data, dict):
            return len(data["users"]), int(data["total"])
        return len(data), None


def route_target(url: str, instance: Path) -> tuple[RouteTarget, Engine]:
    """An idp app on ``url`` (already migrated and seeded), a signing key, a machine client
    granted ``read:users`` on the management API, and its token; the app's engine too."""
    from idp import create_app
    from idp.extensions import db, services
    from idp.keys.service import create_key
    from idp.management.service import ensure_api, management_audience
    from idp.oauth import service as oauth

    issuer = "http://127.0.0.1:5000"  # loopback: plain http is allowed
    (instance / "secret.key").write_text(secrets.token_urlsafe(48))
    app = create_app({"DATABASE_URL": url, "ISSUER": issuer}, instance_path=instance)
    with app.app_context():
        create_key(db.session, services().box, "RS256")
        ensure_api(db.session, issuer)
        made = oauth.create_client(db.session, services().box, name="bench", app_type="m2m")
        db.session.flush()
        oauth.create_client_grant(
            db.session,
            client_id=made.client.client_id,
            audience=management_audience(issuer),
            scopes=["read:users"],
        )
        db.session.commit()
        engine = db.engine
    client = app.test_client()
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials",
                       "audience": management_audience(issuer)},
                       auth=(made.client.client_id, str(made.client_secret)))  # fmt: skip
    assert resp.status_code == 200, resp.get_data(as_text=True)
    token = resp.get_json()["access_token"]
    return RouteTarget(client, {"Authorization": f"Bearer {token}"}), engine


@dataclass
class Timings:
    service: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)
    statements: list[tuple[str, Any]] = field(default_factory=list)
    found: tuple[int, int | None] = (0, None)


def seed(engine: Engine, users: int) -> str:
    """Write the users; return one seeded email (for the exact-email query)."""
    rng = random.Random(14)
    now = START + SPAN
    user_rows: list[dict[str, Any]] = []
    identity_rows: list[dict[str, Any]] = []
    term_rows: list[dict[str, Any]] = []
    for i in range(users):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = START + i * SPAN // users + rng.randrange(3600)
        metadata: dict[str, Any] = {
            "plan": rng.choices(("free", "pro", "enterprise"), (70, 25, 5))[0],
            "tenant": f"t{rng.randrange(200)}",
        }
        if rng.random() < 0.01:
            metadata["vip"] = True
        user_id = f"usr_{rng.getrandbits(64):016x}"
        user_rows.append(
            {
                "id": user_id,
                "email": f"{first}.{last}.{i}@{rng.choice(DOMAINS)}",
                "email_verified": rng.random() < 0.8,
                "password_hash": "x",
                "name": f"{first.title()} {last.title()}",
                "app_metadata": metadata,
                "user_metadata": {},
                "profile": {},
                "logins_count": int(rng.expovariate(1 / 20)),
                "created_at": created,
                "updated_at": min(now, created + rng.randrange(30 * 86400)),
            }
        )
        term_rows += metadata_terms(user_id, metadata, created)  # what idp's flush writes
        links = [("con_database", user_id)]
        if rng.random() < 0.20:
            links.append(("con_google", f"g{i}"))
        if rng.random() < 0.03:
            links.append(("con_acme", f"a{i}"))
        for connection_id, upstream in links:
            identity_rows.append(
                {
                    "id": f"idn_{len(identity_rows):012d}",
                    "user_id": user_id,
                    "connection_id": connection_id,
                    "provider": connection_id.removeprefix("con_"),
                    "upstream_user_id": upstream,
                    "profile": {},
                    "created_at": created,
                }
            )
    with engine.begin() as conn:
        for name, (connection_id, strategy) in CONNECTIONS.items():
            conn.execute(
                insert(Connection),
                [{"id": connection_id, "name": name, "strategy": strategy, "options": {},
                  "position": 1, "created_at": START, "updated_at": START}],
            )  # fmt: skip
        tables = ((User, user_rows), (Identity, identity_rows), (UserMetadataTerm, term_rows))
        for table, rows in tables:
            for at in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[at : at + 5000])
    # statistics, and on PostgreSQL the visibility map autovacuum would have set by now
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"))
    return str(user_rows[len(user_rows) // 2]["email"])


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements and parameters SQLAlchemy sends to the driver meanwhile."""
    sent: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def explain(cursor: Any, dialect: str, statement: str, params: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    cursor.execute(prefix + statement, params)
    rows = cursor.fetchall()
    return "\n".join("      " + str(row[-1] if dialect == "sqlite" else row[0]) for row in rows)


def run(url: str, users: int, rounds: int, show_plans: bool, service: bool = False) -> bool:
    engine = make_engine(url)
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    seconds, email = timed(lambda: seed(engine, users))
    print(f"\n{dialect}: {users} users seeded in {seconds / 1000:.1f} s")
    queries = [(label, {**a, "q": a["q"].format(email=email)}) for label, a in QUERIES]
    # Auth0's default (the page alone) and include_totals=true (a dashboard's: the count too)
    runs = [(f"{label}|{t}", {**a, "include_totals": t}) for label, a in queries for t in TOTALS]
    results = {key: Timings() for key, _ in runs}
    floor: list[float] = []
    with Session(engine) as session, tempfile.TemporaryDirectory() as instance:
        target: Target = ServiceTarget(session)
        sender = engine  # where the target's statements go
        if service:  # the ceiling on the service's own connection
            cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        else:  # the app has its own; this one opens no transaction (SQLite's would lock it out)
            target, sender = route_target(url, Path(instance))
            raw = engine.raw_connection()
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        for key, args in runs:  # warm up, and capture what the target sends
            with captured(sender) as sent:
                results[key].found = target.search(args)
            # the search's reads only: not BEGIN (on a bare cursor it would keep SQLite's write
            # lock) nor the route's token check, which the ratio then counts as overhead
            results[key].statements = [(q, p) for q, p in sent if SEARCHED.search(q)]
        pk = "SELECT * FROM users WHERE id = " + ("?" if dialect == "sqlite" else "%s")
        before = snapshot(None, frozenset({"postgres"}))
        for _ in range(rounds):
            for key, args in runs:
                timing = results[key]
                timing.service.append(timed(lambda a=args: target.search(a))[0])  # type: ignore[misc]

                def ceiling(sent: list[tuple[str, Any]] = timing.statements) -> None:
                    for statement, params in sent:
                        cursor.execute(statement, params)
                        cursor.fetchall()

                timing.ceiling.append(timed(ceiling)[0])
            floor.append(timed(lambda: cursor.execute(pk, ("usr_0",)).fetchall())[0])
        other = foreign_share(before, snapshot(None, frozenset({"postgres"})))
        if show_plans:
            for key, timing in results.items():
                if key.endswith("|true"):
                    print(f"  {key.split('|')[0]} (with the count):")
                    for statement, params in timing.statements:
                        print(explain(cursor, dialect, statement, params))
        session.rollback()
    engine.dispose()
    what = "search_from_args in-process" if service else "GET /api/v2/users (WSGI, in-process)"
    return report(dialect, what, [label for label, _ in queries], results, floor, other)


def report(
    dialect: str,
    what: str,
    labels: list[str],
    results: dict[str, Timings],
    floor: list[float],
    other: float | None,
) -> bool:
    """One row per query: the page alone (the target) and with include_totals=true."""
    noisy = other is not None and other > NOISE_THRESHOLD
    print(f"  {dialect}: service = {what}")
    print("  ms; ceiling = the same statements on the DBAPI cursor; ratio = service / ceiling p50")
    print(
        f"  {'':<31} {'found':>12} | {'page alone (Auth0 default)':^33}"
        f" | {'include_totals=true':^26}"
    )
    print(
        f"  {'query':<31} {'page':>5} {'total':>6} | {'p50':>6} {'p90':>6} {'p99':>6}"
        f" {'ceil':>6} {'ratio':>5} | {'p50':>6} {'p99':>6} {'ceil':>6} {'ratio':>5}"
        " | p50<20"
    )
    ok = True
    for label in labels:
        page, totals = results[f"{label}|false"], results[f"{label}|true"]
        p50, t50 = statistics.median(page.service), statistics.median(totals.service)
        c50, tc50 = statistics.median(page.ceiling), statistics.median(totals.ceiling)
        ok = ok and p50 < TARGET_P50_MS
        verdict = ("yes" if p50 < TARGET_P50_MS else "NO") + (
            "" if t50 < TARGET_P50_MS else " (not with totals)"
        )
        print(
            f"  {label:<31} {page.found[0]:>5} {totals.found[1]!s:>6} | {p50:>6.2f}"
            f" {percentile(page.service, 90):>6.2f} {percentile(page.service, 99):>6.2f}"
            f" {c50:>6.2f} {p50 / c50:>5.1f} | {t50:>6.2f} {percentile(totals.service, 99):>6.2f}"
            f" {tc50:>6.2f} {t50 / tc50:>5.1f} | {verdict}"
        )
    print(f"  floor: a primary-key lookup on the cursor, p50 {statistics.median(floor):.3f} ms")
    share = "unknown" if other is None else f"{other:.0%}"
    print(f"  other CPU {share}" + ("  NOISY" if noisy else ""))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--service", action="store_true", help="time the service, not the route")
    opts = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        urls = [f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"]
        if os.environ.get("IDP_BENCH_DATABASE_URL"):
            urls.append(os.environ["IDP_BENCH_DATABASE_URL"])
        else:
            print("IDP_BENCH_DATABASE_URL is not set: PostgreSQL skipped")
        for url in urls:
            if opts.only is None or url.startswith(opts.only):
                ok = run(url, opts.users, opts.rounds, opts.explain, opts.service) and ok
    print("\ntarget p50 < 20 ms for every query:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
