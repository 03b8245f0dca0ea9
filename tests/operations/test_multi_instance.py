"""Several idp instances on one PostgreSQL database and one Redis (issue 17, "Several
instances"): two real ``idp serve`` processes (gunicorn, then granian), A and B, each with its own instance folder (so
nothing can travel through a file), behind no load balancer: the test talks to each directly.

Their caches are set to keep everything for 300 s, so a change made at A can reach B only
through the Redis version keys (``idp.core.versions``); each delay measured is printed
(run with ``-s``). The documented bound is ``INVALIDATION_CHECK_SECONDS`` (0.5 s here) plus
the request that carries the change; the tests wait up to :data:`PATIENCE` and assert only
that the change arrived.

The processes need PostgreSQL (``IDP_TEST_DATABASE_URL``; SQLite cannot be shared by
instances, and ``CLUSTER`` refuses it) and Redis db 12 (``IDP_TEST_REDIS_MULTI``); the module
skips them otherwise. The start-up refusal runs everywhere.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from idp import create_app
from idp.core import migrate
from idp.extensions import db, services
from idp.keys.service import create_key
from tests.conftest import _POSTGRES, FAST_SETTINGS, TEST_DB_URL, reset_database
from tests.factories import Factory
from tests.helpers import Browser, auth_params, jwt_parts, pkce, redeem
from tests.management.conftest import ALL, Mgmt, grant
from tests.operations.served import SERVERS
from tests.ports import free_port

REDIS_URL = os.environ.get("IDP_TEST_REDIS_MULTI", "redis://127.0.0.1:6379/12")
ROOT = Path(__file__).resolve().parents[2]
CHECK_SECONDS = 0.5  # INVALIDATION_CHECK_SECONDS of both instances
PATIENCE = 20.0  # seconds a test waits for a change to arrive (far above the bound)
LONG = "300"  # every per-worker cache lifetime: only an invalidation can refresh them


def _redis_or_skip() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


@dataclass
class Instance:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _env(issuer: str, secret: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ISSUER=issuer,
        IDP_SECRET_KEY=secret,
        IDP_DATABASE_URL=TEST_DB_URL,
        IDP_REDIS_URL=REDIS_URL,
        IDP_CLUSTER="1",
        IDP_INVALIDATION_CHECK_SECONDS=str(CHECK_SECONDS),
        IDP_CLIENT_CACHE_SECONDS=LONG,
        IDP_KEY_CACHE_SECONDS=LONG,
        IDP_TENANT_SETTINGS_CACHE_SECONDS=LONG,
        IDP_ACTIONS_CHAIN_CACHE_SECONDS=LONG,
        IDP_CC_TOKEN_REUSE_SECONDS=LONG,
        IDP_KEY_PUBLISH_BEFORE_SIGNING_SECONDS="0",
        IDP_ARGON2_TIME_COST="1",
        IDP_ARGON2_MEMORY_KIB="1024",
        IDP_LOG_STREAM_DELIVERY="0",
    )
    env.update(extra)
    return env


def _start(folder: Path, port: int, env: dict[str, str], server: str) -> Instance:
    folder.mkdir()
    log = folder / "serve.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "idp", "--instance", str(folder), "serve", "--server", server,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Instance(f"http://127.0.0.1:{port}", proc, log)


def _wait_ready(instance: Instance) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if instance.proc.poll() is not None:
            raise AssertionError(f"idp serve exited: {instance.log.read_text()[-2000:]}")
        try:
            if requests.get(f"{instance.url}/health/live", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"idp serve did not start: {instance.log.read_text()[-2000:]}")


def _stop(instance: Instance) -> None:
    instance.proc.terminate()
    try:
        instance.proc.wait(15)
    except subprocess.TimeoutExpired:
        instance.proc.kill()
        instance.proc.wait(5)


@dataclass
class Cluster:
    a: Instance
    b: Instance
    issuer: str
    factory: Factory
    mgmt: Mgmt


@pytest.fixture(scope="module", params=SERVERS)
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    if not TEST_DB_URL.startswith("postgresql"):
        pytest.skip("several instances share a PostgreSQL database (IDP_TEST_DATABASE_URL)")
    redis = _redis_or_skip()
    redis.flushdb()
    _POSTGRES["taken"] = True  # this module's own servers use the database
    reset_database(TEST_DB_URL)
    root = tmp_path_factory.mktemp("cluster")
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"  # one issuer, as behind a load balancer
    secret = secrets.token_urlsafe(48)
    # this process: the schema, the first key and the test data, as `idp init` and the CLI do
    setup = create_app(
        dict(FAST_SETTINGS, ISSUER=issuer, SECRET_KEY=secret, DATABASE_URL=TEST_DB_URL,
             REDIS_URL=REDIS_URL),
        instance_path=root / "setup",
    )  # fmt: skip
    with setup.app_context():
        migrate.upgrade(db.engine)
        create_key(db.session, services().box, "RS256")
        db.session.commit()
    a = _start(root / "a", port_a, _env(issuer, secret), request.param)
    b = _start(root / "b", port_b, _env(issuer, secret), request.param)
    try:
        _wait_ready(a)
        _wait_ready(b)
        op = SimpleNamespace(app=setup, url=issuer, factory=Factory(setup))
        yield Cluster(a, b, issuer, op.factory, Mgmt(op, grant(op, ALL), ALL, []))
    finally:
        _stop(a)
        _stop(b)
        with setup.app_context():
            services().actions.close()
            db.engine.dispose()
        redis.flushdb()


def _cc(base: str, client: Any, audience: str, secret: str | None = None) -> requests.Response:
    return requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=(client.client_id, secret or client.client_secret),
        timeout=30,
    )


def _until(what: str, done: Callable[[], bool]) -> float:
    """Seconds until ``done()`` (polled), printed; fails after :data:`PATIENCE`."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < PATIENCE, f"{what}: not seen after {PATIENCE} s"
        time.sleep(0.02)
    delay = time.monotonic() - start
    print(f"\n{what}: reached the other instance in {delay * 1000:.0f} ms "
          f"(documented bound: {CHECK_SECONDS * 1000:.0f} ms + one request)")  # fmt: skip
    return delay


def test_a_code_issued_by_one_is_redeemed_at_the_other(cluster: Cluster) -> None:
    client = cluster.factory.gen_client()
    user = cluster.factory.gen_user()
    browser = Browser(cluster.a.url)
    verifier, challenge = pkce()
    result = browser.authorize(auth_params(client, challenge), user)
    assert result.code, (result.status, result.page[:300])

    tokens = redeem(cluster.b.url, client, result.code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert jwt_parts(tokens.json()["id_token"])[1]["iss"] == cluster.issuer
    again = redeem(cluster.a.url, client, result.code, verifier)  # single use, everywhere
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # the session made at A is single sign-on at B (its cookie, the row in the database)
    at_b = Browser(cluster.b.url)
    at_b.http = browser.http
    _, challenge = pkce()
    sso = at_b.authorize(auth_params(client, challenge))
    assert sso.code and not sso.login_shown, (sso.status, sso.page[:300])


def test_a_secret_rotated_at_a_is_refused_at_b(cluster: Cluster) -> None:
    client, audience = cluster.factory.m2m()
    assert _cc(cluster.b.url, client, audience).status_code == 200  # B caches the client

    rotated = cluster.mgmt.call("POST", f"/clients/{client.client_id}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    _until("secret rotation", lambda: _cc(cluster.b.url, client, audience).status_code == 401)
    new = _cc(cluster.b.url, client, audience, rotated.json()["client_secret"])
    assert new.status_code == 200, new.text


def test_a_key_rotated_at_a_signs_at_b(cluster: Cluster) -> None:
    client, audience = cluster.factory.m2m()
    first = _cc(cluster.b.url, client, audience).json()["access_token"]
    assert _cc(cluster.b.url, client, audience).json()["access_token"] == first  # reused

    rotated = cluster.mgmt.call("POST", "/keys/signing/rotate")
    assert rotated.status_code == 201, rotated.text
    kid = rotated.json()["kid"]
    assert jwt_parts(first)[0]["kid"] != kid

    def signs_with_new_key() -> bool:
        token = _cc(cluster.b.url, client, audience).json()["access_token"]
        return bool(jwt_parts(token)[0]["kid"] == kid)

    _until("key rotation", signs_with_new_key)
    jwks = requests.get(f"{cluster.b.url}/.well-known/jwks.json", timeout=10).json()
    assert kid in {k["kid"] for k in jwks["keys"]}


def test_a_tenant_setting_changed_at_a_applies_at_b(cluster: Cluster) -> None:
    def color_at_b() -> str:
        css = requests.get(f"{cluster.b.url}/branding.css", timeout=10).text
        return css.split("--accent:")[1].split(";")[0].strip()

    before = color_at_b()  # B caches the settings
    color = "#0a7d3b" if before != "#0a7d3b" else "#7d0a3b"
    patched = cluster.mgmt.call("PATCH", "/branding", json={"colors": {"primary": color}})
    assert patched.status_code == 200, patched.text
    _until("tenant setting", lambda: color_at_b() == color)


def test_a_push_challenge_waiting_at_b_is_approved_through_a(
    cluster: Cluster, tmp_path: Path
) -> None:
    """MFA push: the login waits at B, the phone (which talks to the issuer, A) lists the
    challenge and approves it there, and B's waiting page completes the login."""
    from tests.mfa.test_push import check, cli, enrol_device, listed, start_push
    from tests.mfa.test_totp import follow, tokens_from

    at_a = SimpleNamespace(url=cluster.a.url, factory=cluster.factory)
    at_b = SimpleNamespace(url=cluster.b.url, factory=cluster.factory)
    client, user, state = enrol_device(at_a, tmp_path)
    browser, uid, number, verifier = start_push(at_b, client, user)
    [challenge] = listed(state)
    assert number in challenge["numbers"]
    done = cli(state, "approve", challenge["id"], "--number", str(number))
    assert done.returncode == 0 and done.stdout.strip() == "approved", done.stderr
    location, _ = follow(browser, check(browser, uid))
    assert location and "code=" in location
    claims = jwt_parts(tokens_from(at_a, client, location, verifier)["id_token"])[1]
    assert claims["amr"] == ["pwd", "swk", "mfa"]


def test_a_token_revoked_at_a_is_never_reused_at_b(cluster: Cluster) -> None:
    client, audience = cluster.factory.m2m()
    token = _cc(cluster.b.url, client, audience).json()["access_token"]
    assert _cc(cluster.b.url, client, audience).json()["access_token"] == token  # reused

    revoked = requests.post(
        f"{cluster.a.url}/oauth/revoke", data={"token": token}, auth=client.basic, timeout=10
    )
    assert revoked.status_code == 200
    # no delay at all: B asks Redis before each reuse
    assert _cc(cluster.b.url, client, audience).json()["access_token"] != token


def test_a_grant_removed_or_client_deleted_at_a_stops_reuse_at_b(cluster: Cluster) -> None:
    """Client-credentials reuse (on here) hands out no token the client could not get fresh:
    B checks the grant in its client cache before its reuse map, and that cache follows the
    ``clients`` version."""
    client, audience = cluster.factory.m2m()
    token = _cc(cluster.b.url, client, audience).json()["access_token"]
    assert _cc(cluster.b.url, client, audience).json()["access_token"] == token  # reused
    listed = cluster.mgmt.call("GET", "/client-grants", params={"client_id": client.client_id})
    [granted] = listed.json()
    removed = cluster.mgmt.call("DELETE", f"/client-grants/{granted['id']}")
    assert removed.status_code == 204, removed.text
    _until("grant removal", lambda: _cc(cluster.b.url, client, audience).status_code == 403)

    other, audience = cluster.factory.m2m()
    token = _cc(cluster.b.url, other, audience).json()["access_token"]
    assert _cc(cluster.b.url, other, audience).json()["access_token"] == token  # reused
    deleted = cluster.mgmt.call("DELETE", f"/clients/{other.client_id}")
    assert deleted.status_code == 204, deleted.text
    _until("client deletion", lambda: _cc(cluster.b.url, other, audience).status_code == 401)


ACTION = """\
def on_execute_credentials_exchange(event, api):
    seen = api.cache.get('runs')
    runs = int(seen['value']) + 1 if seen else 1
    api.cache.set('runs', str(runs))
    api.access_token.set_custom_claim('https://example.com/instance', 'deployed at A')
    api.access_token.set_custom_claim('https://example.com/runs', runs)
"""


def test_an_action_deployed_at_a_runs_at_b(cluster: Cluster) -> None:
    """And its ``api.cache`` and execution records are the same at both instances."""
    client, audience = cluster.factory.m2m()
    mgmt = cluster.mgmt
    token = mgmt.token()  # before the chain is bound (it runs for the API's tokens too)
    claim, runs = "https://example.com/instance", "https://example.com/runs"
    assert claim not in jwt_parts(_cc(cluster.b.url, client, audience).json()["access_token"])[1]

    created = mgmt.call(
        "POST", "/actions/actions", token=token,
        json={"name": "stamp", "code": ACTION,
              "supported_triggers": [{"id": "credentials-exchange", "version": "v1"}]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    deployed = mgmt.call("POST", f"/actions/actions/{aid}/deploy", token=token)
    assert deployed.status_code == 200, deployed.text
    bound = mgmt.call(
        "POST", "/actions/triggers/credentials-exchange/bindings", token=token,
        json={"action": aid},
    )  # fmt: skip
    assert bound.status_code == 201, bound.text

    def claims_at(base: str) -> dict[str, Any]:
        resp = _cc(base, client, audience)
        assert resp.status_code == 200, resp.text
        return jwt_parts(resp.json()["access_token"])[1]

    try:
        _until("action deployment", lambda: claims_at(cluster.b.url).get(claim) == "deployed at A")
        at_b = claims_at(cluster.b.url)[runs]
        assert claims_at(cluster.a.url)[runs] == at_b + 1  # A reads what B's run cached
        assert claims_at(cluster.b.url)[runs] == at_b + 2

        def recorded() -> int:
            listed = mgmt.call("GET", f"/actions/actions/{aid}/executions", token=token)
            assert listed.status_code == 200, listed.text
            return int(listed.json()["stats"]["executions"])

        _until("execution records", lambda: recorded() == at_b + 2)  # every run, both writers
    finally:
        unbound = mgmt.call(
            "PATCH", "/actions/triggers/credentials-exchange/bindings", token=token,
            json={"bindings": []},
        )  # fmt: skip
        assert unbound.status_code == 200, unbound.text


# ------------------------------------------------------------------ refusal at start-up
def _serve_refused(tmp_path: Path, **env: str) -> str:
    folder = tmp_path / "refused"
    folder.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    done = subprocess.run(
        [sys.executable, "-m", "idp", "--instance", str(folder), "serve", "--port", "1"],
        cwd=ROOT, env={**base, "IDP_SECRET_KEY": secrets.token_urlsafe(48), **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    return done.stderr


def test_cluster_without_redis_is_refused_at_start_up(tmp_path: Path) -> None:
    stderr = _serve_refused(
        tmp_path,
        IDP_CLUSTER="1",
        IDP_DATABASE_URL="postgresql+psycopg://idp@db.invalid/idp",
    )
    assert "CLUSTER is on" in stderr and "REDIS_URL is empty" in stderr, stderr
    with pytest.raises(ValueError, match="REDIS_URL is empty"):  # gunicorn's workers too
        create_app(
            dict(FAST_SETTINGS, CLUSTER=True, SECRET_KEY="x" * 48,
                 DATABASE_URL="postgresql+psycopg://idp@db.invalid/idp"),
            instance_path=tmp_path,
        )  # fmt: skip


def test_cluster_on_sqlite_is_refused_at_start_up(tmp_path: Path) -> None:
    stderr = _serve_refused(tmp_path, IDP_CLUSTER="1", IDP_REDIS_URL=REDIS_URL)
    assert "the database is SQLite" in stderr, stderr
