"""``idp dev seed`` (issue 17, "Scale"): bulk users and clients that work like real ones.

The seed runs through the command line (``COPY`` on PostgreSQL, ``executemany`` on SQLite)
into a fresh instance; then a server on that database logs a seeded user in with the
documented shared password, a seeded machine client gets a token, and the management API's
users search finds seeded users by email, by app_metadata (the ``user_metadata_terms`` the
bulk path writes, as the ORM's flush listener would) and by connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from idp import create_app
from idp.cli import main
from idp.dev import seed as seeding
from idp.extensions import db
from idp.identity.models import User, UserMetadataTerm, metadata_terms
from tests import factories
from tests.conftest import (
    _POSTGRES,
    FAST_SETTINGS,
    TEST_DB_URL,
    LiveServer,
    reset_database,
    serving,
)
from tests.helpers import jwt_parts, login_and_redeem
from tests.management.conftest import Mgmt, grant

USERS, CLIENTS = 2000, 20
ENV = {"IDP_ARGON2_MEMORY_KIB": "1024", "IDP_ARGON2_TIME_COST": "1"}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Seeded:
    op: LiveServer
    cli: Any  # (*args) -> Ran
    report: dict[str, Any]


@dataclass
class Ran:
    exit_code: int
    stdout: str
    output: str  # stdout and stderr


def _runner(instance: Path, url: str) -> Any:
    """``idp --instance DIR --json ...`` as its own process, as an operator runs it (and its
    database connections end with it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(ENV, IDP_DATABASE_URL=url)

    def run(*args: str) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "idp", "--instance", str(instance), "--json", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        return Ran(done.returncode, done.stdout, done.stdout + done.stderr)

    return run


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    instance = tmp_path_factory.mktemp("seeded")
    url = f"sqlite:///{instance / 'idp.sqlite3'}"
    if TEST_DB_URL and not _POSTGRES["taken"]:
        url, _POSTGRES["taken"] = TEST_DB_URL, True
        reset_database(url)
    cli = _runner(instance, url)
    assert cli("init").exit_code == 0
    result = cli("dev", "seed", "--users", str(USERS), "--clients", str(CLIENTS))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    def build(port: int) -> Any:
        config = dict(FAST_SETTINGS, ISSUER=f"http://127.0.0.1:{port}", DATABASE_URL=url)
        return create_app(config, instance_path=instance)

    with serving(build) as op:
        yield Seeded(op, cli, report)


def test_the_seed_writes_users_identities_terms_and_clients(seeded: Seeded) -> None:
    report = seeded.report
    assert (report["users"], report["users_added"]) == (USERS, USERS)
    assert (report["clients"], report["clients_added"]) == (CLIENTS, CLIENTS)
    assert report["method"] == ("copy" if seeded.op.app.config["DATABASE_URL"].startswith(
        "postgresql") else "executemany")  # fmt: skip
    assert report["rows_per_second"] > 0 and report["password"] == seeding.DEFAULT_PASSWORD
    with seeded.op.app.app_context():
        users = db.session.scalars(select(User)).all()
        assert len(users) == USERS
        assert len({u.password_hash for u in users}) == 1  # one hash, shared (documented)
        plans = {u.app_metadata["plan"] for u in users}
        assert plans == {"free", "pro", "enterprise"}
        # the index holds exactly what the ORM's flush listener would have written
        expected = {(t["user_id"], t["key"], t["digest"], t["created_at"]) for u in users
                    for t in metadata_terms(u.id, u.app_metadata, u.created_at)}  # fmt: skip
        stored = db.session.execute(
            select(
                UserMetadataTerm.user_id,
                UserMetadataTerm.key,
                UserMetadataTerm.digest,
                UserMetadataTerm.created_at,
            )
        ).all()
        assert {tuple(row) for row in stored} == expected and len(stored) == len(expected)


def test_a_second_run_adds_only_what_is_missing(seeded: Seeded) -> None:
    more = seeded.cli("dev", "seed", "--users", str(USERS + 10), "--clients", str(CLIENTS))
    assert more.exit_code == 0, more.output
    report = json.loads(more.stdout)
    assert (report["users_added"], report["clients_added"]) == (10, 0)
    with seeded.op.app.app_context():
        assert db.session.get(User, seeding.user_id(USERS + 9)) is not None


def test_a_seeded_user_logs_in_with_the_documented_password(seeded: Seeded) -> None:
    web = factories.TestClient(seeding.client_id(0), seeding.DEFAULT_CLIENT_SECRET,
                     "https://app0.seed.idp.test/callback")  # fmt: skip
    n = USERS // 2
    user = factories.TestUser(seeding.user_id(n), seeding.user_email(n), seeding.DEFAULT_PASSWORD)
    tokens = login_and_redeem(seeded.op.url, web, user)
    assert jwt_parts(tokens["id_token"])[1]["sub"] == user.user_id


def test_a_seeded_machine_client_gets_a_token(seeded: Seeded) -> None:
    resp = requests.post(
        f"{seeded.op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": seeding.API},
        auth=(seeding.client_id(1), seeding.DEFAULT_CLIENT_SECRET),
    )
    assert resp.status_code == 200, resp.text
    assert jwt_parts(resp.json()["access_token"])[1]["scope"] == seeding.SCOPE


def test_the_users_search_finds_seeded_users(seeded: Seeded) -> None:
    mgmt = Mgmt(seeded.op, grant(seeded.op, ["read:users"]), ["read:users"], [])

    def search(q: str) -> dict[str, Any]:
        resp = mgmt.call("GET", "/users", params={"q": q, "include_totals": "true"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    email = seeding.user_email(1234)
    found = search(f'email:"{email}"')
    assert [u["user_id"] for u in found["users"]] == [seeding.user_id(1234)]
    with seeded.op.app.app_context():
        users = db.session.scalars(select(User)).all()
        enterprise = {u.id for u in users if u.app_metadata["plan"] == "enterprise"}
        vip = {u.id for u in users if u.app_metadata.get("vip") is True}
    page = search("app_metadata.plan:enterprise")
    assert page["total"] == len(enterprise) > 0
    assert {u["user_id"] for u in page["users"]} <= enterprise
    assert {u["user_id"] for u in search("app_metadata.vip:true")["users"]} == vip
    social = search(f"identities.connection:{seeding.SOCIAL}")
    assert 0 < social["total"] < len(users) // 10  # ~3 %
    assert all(
        any(i["connection"] == seeding.SOCIAL for i in u["identities"]) for u in social["users"]
    )


def test_an_instance_with_real_users_is_refused_unless_forced(tmp_path: Path) -> None:
    runner = CliRunner(env={**ENV, "IDP_DATABASE_URL": None, "IDP_INSTANCE": None})  # SQLite

    def cli(*args: str) -> Any:
        return runner.invoke(main, ["--instance", str(tmp_path), "--json", *args])

    assert cli("init").exit_code == 0
    made = cli("users", "create", "--email", "real@example.test", "--password", "a real one 42")
    assert made.exit_code == 0, made.output
    refused = cli("dev", "seed", "--users", "5", "--clients", "1")
    assert refused.exit_code != 0 and "--force" in refused.output
    forced = cli("dev", "seed", "--users", "5", "--clients", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["users"] == 5


def test_the_seeded_instance_refuses_a_rerun_once_it_has_real_clients(seeded: Seeded) -> None:
    # the search test above made a management client through the factory, not the seed
    refused = seeded.cli("dev", "seed", "--users", str(USERS), "--clients", str(CLIENTS))
    assert refused.exit_code != 0 and "--force" in refused.output
