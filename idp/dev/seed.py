"""``idp dev seed``: a large, realistic tenant for measuring idp at scale (issue 17, "Scale").

Users ``usr_seed00000000`` … with names and emails from small lists (``user_email(i)`` says
which), 80 % verified, created a minute apart from 2024-01-01, app_metadata ``plan`` (free
70 %, pro 25 %, enterprise 5 %), ``tenant`` (``t0`` … ``t199``) and, for 1 %, ``vip: true``;
each has its identity through the database connection, 3 % one more through a ``google``
connection named ``seed-google`` (enabled for no application). Clients ``seed000000`` …: one in
ten a regular web app, the others machine clients granted ``read:things`` on the API
``https://api.seed.idp.test``.

**Every seeded user has the same password and every seeded client the same secret**
(:data:`DEFAULT_PASSWORD`, :data:`DEFAULT_CLIENT_SECRET` unless given): one argon2id hash is
computed once and written for every user, which is what makes a million users take minutes,
not the ~11 hours of a million hashes. Seeded data is for development and benchmarks only.

Rows are written in batches of :data:`BATCH` users, each batch (users, identities, and the
``user_metadata_terms`` that ``idp.identity.models``' flush listener would have written, made
by the listener's own ``metadata_terms``) in one transaction, with ``COPY`` on PostgreSQL
(:mod:`idp.dev.bulk`). Ids are numbered, so a run continues where an earlier one stopped:
``--users N`` means N seeded users in all. The seeded API is the seed's marker; an instance
holding users or clients the seed did not make is refused unless ``force``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from idp.connections import service as connections
from idp.connections.models import Connection, ConnectionClient, Identity
from idp.core.crypto import SecretBox
from idp.core.errors import ValidationError
from idp.dev.bulk import write_rows
from idp.identity.models import User, UserMetadataTerm, metadata_terms
from idp.identity.service import Passwords
from idp.oauth import service as oauth
from idp.oauth.clients import GRANT_TYPES_BY_APP, OPT_IN_GRANT_TYPES
from idp.oauth.models import Client, ClientGrant, ResourceServer

DEFAULT_PASSWORD = "seeded-user-password"  # noqa: S105 (documented: development data)
DEFAULT_CLIENT_SECRET = "seeded-client-secret"  # noqa: S105
API = "https://api.seed.idp.test"
SCOPE = "read:things"
SOCIAL = "seed-google"
USER_PREFIX, CLIENT_PREFIX = "usr_seed", "seed"
BATCH = 10_000
START = 1_704_067_200  # 2024-01-01T00:00:00Z; user i is created i minutes later
FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
         "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas",
         "sarah", "chris", "karen", "nina", "omar", "li", "wei"]  # fmt: skip
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis",
        "rodriguez", "martinez", "lopez", "wilson", "anderson", "thomas", "taylor", "moore",
        "jackson", "martin", "lee", "perez", "white", "harris"]  # fmt: skip
DOMAINS = ("example.com", "example.org", "acme.test", "mail.test")  # fmt: skip


def user_id(i: int) -> str:
    return f"{USER_PREFIX}{i:08d}"


def user_email(i: int) -> str:
    """The email of seeded user ``i`` (unique: it ends with ``i``)."""
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    return f"{first}.{last}.{i}@{DOMAINS[(i // 7) % len(DOMAINS)]}"


def client_id(i: int) -> str:
    return f"{CLIENT_PREFIX}{i:06d}"


@dataclass
class SeedReport:
    users: int  # seeded users in all, after this run
    clients: int
    users_added: int = 0
    clients_added: int = 0
    rows: int = 0  # rows written (users, identities, terms, clients, grants, links)
    seconds: float = 0.0
    method: str = "none"  # how the users went in: copy or executemany
    password: str = DEFAULT_PASSWORD
    client_secret: str = DEFAULT_CLIENT_SECRET
    api: str = API
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return {**self.__dict__, "rows_per_second": round(rate)}


def foreign_data(session: Session) -> bool:
    """True when the instance has users or clients that the seed did not make."""
    user = session.scalar(select(User.id).where(~User.id.startswith(USER_PREFIX)).limit(1))
    made = session.scalar(
        select(Client.client_id).where(~Client.client_id.startswith(CLIENT_PREFIX)).limit(1)
    )
    return user is not None or made is not None


def _count(session: Session, column: Any, prefix: str) -> int:
    return int(session.scalar(select(func.count()).where(column.startswith(prefix))) or 0)


def seed(
    session: Session,
    passwords: Passwords,
    box: SecretBox,
    *,
    users: int,
    clients: int,
    force: bool = False,
    password: str = DEFAULT_PASSWORD,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Bring the seeded users and clients up to ``users`` and ``clients``; commits as it goes."""
    if users < 0 or clients < 0:
        raise ValidationError("--users and --clients must not be negative")
    if len(password) < 8 or len(client_secret) < 8:
        raise ValidationError("the password and the client secret need 8 characters or more")
    marked = session.scalar(select(ResourceServer.id).where(ResourceServer.identifier == API))
    if not force and foreign_data(session):
        raise ValidationError(
            "this instance has users or clients the seed did not make: seeding it would mix "
            "development data (one shared password) into real data; use --force to seed anyway"
        )
    started = time.perf_counter()
    if marked is None:
        oauth.create_api(session, identifier=API, name="Seeded API", scopes=[SCOPE])
        connections.create_connection(
            session, name=SOCIAL, strategy="google", options={"client_id": "seed"}, box=box
        )
        session.commit()
    have_users = _count(session, User.id, USER_PREFIX)
    have_clients = _count(session, Client.client_id, CLIENT_PREFIX)
    report = SeedReport(max(users, have_users), max(clients, have_clients))
    report.password, report.client_secret = password, client_secret
    database = connections.get_connection(session, connections.DATABASE)
    social = connections.get_connection(session, SOCIAL)
    if users > have_users:
        hashed = passwords.hash(password)  # once: every seeded user shares it
        for at in range(have_users, users, BATCH):
            rows, report.method = _users(
                session, range(at, min(at + BATCH, users)), hashed, database, social
            )
            session.commit()
            report.rows += rows
            if progress:
                progress(f"users {min(at + BATCH, users):,}/{users:,}")
        report.users_added = users - have_users
    if clients > have_clients:
        report.rows += _clients(session, box, range(have_clients, clients), client_secret, database)
        session.commit()
        report.clients_added = clients - have_clients
    report.seconds = time.perf_counter() - started
    ends = {0, report.users // 2, report.users - 1} if report.users else set()
    report.examples = [user_email(i) for i in sorted(ends)]
    return report


def _users(
    session: Session, numbers: range, hashed: str, database: Connection, social: Connection
) -> tuple[int, str]:
    rng = random.Random(numbers.start)  # noqa: S311 (the same users whichever run writes them)
    users: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    terms: list[dict[str, str]] = []
    for i in numbers:
        uid, created = user_id(i), START + i * 60
        metadata: dict[str, object] = {
            "plan": rng.choices(("free", "pro", "enterprise"), (70, 25, 5))[0],
            "tenant": f"t{rng.randrange(200)}",
        }
        if rng.random() < 0.01:
            metadata["vip"] = True
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        users.append({
            "id": uid, "email": user_email(i), "email_verified": rng.random() < 0.8,
            "password_hash": hashed, "name": f"{first.title()} {last.title()}",
            "app_metadata": metadata, "user_metadata": {}, "profile": {},
            "logins_count": int(rng.expovariate(1 / 20)), "blocked": False,
            "created_at": created, "updated_at": created,
        })  # fmt: skip
        terms += metadata_terms(uid, metadata, created)  # what the flush listener writes
        identities.append(_identity(f"idn_seed{i:08d}", uid, database, uid, created))
        if rng.random() < 0.03:
            identities.append(_identity(f"idn_sgoo{i:08d}", uid, social, f"g{i}", created))
    method = write_rows(session, User.__table__, users)  # type: ignore[arg-type]
    write_rows(session, Identity.__table__, identities)  # type: ignore[arg-type]
    write_rows(session, UserMetadataTerm.__table__, terms)  # type: ignore[arg-type]
    return len(users) + len(identities) + len(terms), method


def _identity(
    id_: str, uid: str, connection: Connection, upstream: str, created: int
) -> dict[str, Any]:
    return {"id": id_, "user_id": uid, "connection_id": connection.id,
            "provider": connection.strategy, "upstream_user_id": upstream, "profile": {},
            "created_at": created, "user_created_at": created}  # fmt: skip


def _clients(
    session: Session, box: SecretBox, numbers: range, secret: str, database: Connection
) -> int:
    digest = box.digest(secret)  # once: every seeded client shares it
    now = int(time.time())
    clients, grants, links = [], [], []
    for i in numbers:
        cid, kind = client_id(i), "regular_web" if i % 10 == 0 else "m2m"
        web = kind == "regular_web"
        clients.append({
            "client_id": cid, "name": f"Seeded app {i}", "app_type": kind,
            "secret_digest": digest, "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": [f"https://app{i}.seed.idp.test/callback"] if web else [],
            "post_logout_redirect_uris": [], "first_party": True, "created_at": now,
            "grant_types": [g for g in GRANT_TYPES_BY_APP[kind] if g not in OPT_IN_GRANT_TYPES],
        })  # fmt: skip
        if web:
            links.append({"connection_id": database.id, "client_id": cid})
        else:
            grants.append({"id": f"cgr_seed{i:06d}", "client_id": cid, "audience": API,
                           "scopes": [SCOPE], "created_at": now})  # fmt: skip
    for table, rows in ((Client, clients), (ClientGrant, grants), (ConnectionClient, links)):
        for at in range(0, len(rows), BATCH):
            session.execute(insert(table), rows[at : at + BATCH])
    return len(clients) + len(grants) + len(links)
