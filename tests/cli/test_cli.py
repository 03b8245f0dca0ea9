"""The real ``idp`` console script, run as a subprocess against a temporary SQLite instance.

Every command starts a Python interpreter (~1 s), so the whole scenario runs once, two commands
at a time where they are independent, in a module-scoped fixture; the tests then check what
each step printed, returned and left in the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_SCRIPT = Path(sys.executable).parent / "idp"
IDP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "idp"]


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, (self.argv, self.stderr)
        return json.loads(self.stdout)


# Runs several commands in one interpreter through the installed ``idp`` console-script entry
# point, in click's standalone mode exactly as the script does; an exception escaping ``main``
# is printed as the interpreter would print it, so a traceback is still caught by the tests.
_BATCH = """
import contextlib, io, json, sys, traceback
from importlib.metadata import entry_points
main = next(e for e in entry_points(group="console_scripts") if e.name == "idp").load()
results = []
for argv in json.load(sys.stdin):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv, prog_name="idp")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([argv, code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


# the module's scenario (~50 CLI processes, two at a time) is set up once, in the first test: on a
# loaded 2-core machine it outlasts the suite's 120 s default
pytestmark = pytest.mark.timeout(600)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _run(cmd: list[str]) -> Run:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env())
    return Run(cmd, proc.returncode, proc.stdout, proc.stderr)


def _batch(cmds: list[list[str]]) -> list[Run]:
    proc = subprocess.run(
        [sys.executable, "-c", _BATCH],
        input=json.dumps(cmds),
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return [Run(*row) for row in json.loads(proc.stdout)]


class Cli:
    """``idp --instance DIR ...`` as argument lists; ``par`` runs independent jobs side by side
    (the machine may have two cores only, and each interpreter takes ~1 s to start)."""

    def __init__(self, instance: Path) -> None:
        self.instance = instance
        self.pool = ThreadPoolExecutor(max_workers=2)

    def args(self, *args: str, instance: Path | None = None, as_json: bool = False) -> list[str]:
        return (
            ["--instance", str(instance or self.instance)]
            + (["--json"] if as_json else [])
            + [*args]
        )

    def par(self, *jobs: Callable[[], Any]) -> list[Any]:
        return [f.result() for f in [self.pool.submit(job) for job in jobs]]


def _scenario(tmp: Path) -> dict[str, Any]:
    inst = tmp / "instance"
    cli = Cli(inst)

    def j(*a: str) -> list[str]:
        return cli.args(*a, as_json=True)

    def real(args: list[str]) -> Callable[[], Run]:
        return lambda: _run([*IDP, *args])

    r: dict[str, Any] = {}
    r["init1"], r["module_help"] = cli.par(
        real(j("init")), lambda: _run([sys.executable, "-m", "idp", "--help"])
    )
    r["secret_after_init1"] = (inst / "secret.key").read_text()
    r["secret_mode"] = stat.S_IMODE((inst / "secret.key").stat().st_mode)

    r["init2"], r["web"] = cli.par(
        real(j("init")),
        real(j("clients", "create", "--name", "Web", "--type", "regular_web",
               "--redirect-uri", "https://app.test/cb",
               "--post-logout-redirect-uri", "https://app.test/bye")),
    )  # fmt: skip
    r["secret_after_init2"] = (inst / "secret.key").read_text()
    r["rotate"], r["m2m"] = cli.par(
        real(j("keys", "rotate", "--now")),
        real(cli.args("clients", "create", "--name", "Worker", "--type", "m2m")),
    )
    r["keys"], r["spa"] = cli.par(
        real(j("keys", "list")),
        real(j("clients", "create", "--name", "SPA", "--type", "spa",
               "--redirect-uri", "https://spa.test/cb")),
    )  # fmt: skip
    r["api"], r["user"] = cli.par(
        real(j("apis", "create", "--identifier", "https://api.test", "--name", "API",
               "--scope", "read:things", "--scope", "write:things")),
        real(j("users", "create", "--email", "ada@example.test", "--password",
               "correct horse 42", "--email-verified")),
    )  # fmt: skip
    m2m_id = _field(r["m2m"].stdout, "client_id")
    r["grant"], r["demo1"] = cli.par(
        real(j("client-grants", "create", "--client-id", m2m_id, "--audience",
               "https://api.test", "--scope", "read:things")),
        real(j("demo")),
    )  # fmt: skip

    reads_and_errors = {
        "apis": j("apis", "list"),
        "grants": j("client-grants", "list"),
        "users": j("users", "list"),
        "text_list": cli.args("clients", "list"),
        "uninitialised": cli.args("clients", "list", instance=tmp / "never-initialised"),
        "err_type": cli.args("clients", "create", "--name", "X", "--type", "mainframe"),
        "err_http": cli.args("clients", "create", "--name", "X", "--type", "regular_web",
                             "--redirect-uri", "http://app.test/cb"),
        "err_js": cli.args("clients", "create", "--name", "X", "--type", "spa",
                           "--redirect-uri", "javascript:alert(1)"),
        "err_dup_api": cli.args("apis", "create", "--identifier", "https://api.test",
                                "--name", "Again"),
        "err_grant": cli.args("client-grants", "create", "--client-id", "no-such-client",
                              "--audience", "https://api.test", "--scope", "read:things"),
        "err_user": cli.args("users", "delete", "nobody@example.test"),
    }  # fmt: skip
    r["clients"], batch = cli.par(
        real(j("clients", "list")), lambda: _batch(list(reads_and_errors.values()))
    )
    r.update(zip(reads_and_errors, batch, strict=True))

    deletes = {
        "del_user": j("users", "delete", r["user"].json()["user_id"]),
        "del_grant": j("client-grants", "delete", r["grant"].json()["id"]),
        "del_api": j("apis", "delete", "https://api.test"),
        "demo2": j("demo"),
    }
    r["del_spa"], batch = cli.par(
        real(j("clients", "delete", r["spa"].json()["client_id"])),
        lambda: _batch(list(deletes.values())),
    )
    r.update(zip(deletes, batch, strict=True))
    cli.pool.shutdown()
    r["instance"] = inst
    r["m2m_id"] = m2m_id
    return r


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].split()[0]
    raise AssertionError(f"{name} not in {text!r}")


@pytest.fixture(scope="module")
def s(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _scenario(tmp_path_factory.mktemp("cli"))


def _db(s: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(s["instance"] / "idp.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _assert_clean_error(run: Run, *fragments: str) -> None:
    """Exit code != 0, no traceback, and exactly one ``Error: ...`` line (the last line)."""
    assert run.returncode not in (0, None), (run.argv, run.stdout)
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], run.stderr
    for fragment in fragments:
        assert fragment in errors[0], run.stderr


# --- init and keys ---------------------------------------------------------------------------


def test_init_creates_instance(s):
    out = s["init1"].json()
    assert out["instance"] == str(s["instance"].resolve())
    assert out["signing_key_created"]
    inst = s["instance"]
    assert (inst / "config.toml").is_file()
    assert s["secret_mode"] == 0o600
    assert len(s["secret_after_init1"].strip()) >= 32
    assert (inst / "idp.sqlite3").is_file()


def test_init_is_idempotent(s):
    again = s["init2"].json()
    assert again["signing_key_created"] is None
    assert s["secret_after_init2"] == s["secret_after_init1"]


def test_keys_rotate_and_list(s):
    first_kid = s["init1"].json()["signing_key_created"]
    new = s["rotate"].json()
    assert new["alg"] == "RS256" and new["kid"] != first_kid
    keys = {k["kid"]: k for k in s["keys"].json()}
    assert set(keys) == {first_kid, new["kid"]}  # the second init made no key
    assert keys[first_kid]["status"] == "retired" and keys[first_kid]["unpublish_at"]
    assert keys[new["kid"]]["status"] == "active" and keys[new["kid"]]["unpublish_at"] is None
    assert keys[new["kid"]]["signs_from"] == new["signs_from"]  # --now: no overlap


# --- clients ---------------------------------------------------------------------------------


def test_create_regular_web_client(s):
    web = s["web"].json()
    assert web["type"] == "regular_web"
    assert web["redirect_uris"] == ["https://app.test/cb"]
    assert web["post_logout_redirect_uris"] == ["https://app.test/bye"]
    assert web["token_endpoint_auth_method"] == "client_secret_basic"
    assert web["client_secret"] and len(web["client_secret"]) >= 32


def test_create_m2m_prints_secret_once(s):
    run = s["m2m"]
    assert run.returncode == 0, run.stderr
    secret = _field(run.stdout, "client_secret")
    assert len(secret) >= 32
    # Shown once: never again in a listing, and stored only as a digest.
    listed = s["clients"].json()
    assert secret not in s["clients"].stdout and secret not in s["text_list"].stdout
    m2m = next(c for c in listed if c["client_id"] == s["m2m_id"])
    assert m2m["type"] == "m2m" and m2m["grant_types"] == ["client_credentials"]
    assert "client_secret" not in m2m
    (digest,) = _db(s, f"SELECT secret_digest FROM clients WHERE client_id = '{s['m2m_id']}'")[0]
    assert digest and secret not in digest


def test_create_spa_has_no_secret(s):
    spa = s["spa"].json()
    assert spa["type"] == "spa"
    assert spa["client_secret"] is None
    assert spa["token_endpoint_auth_method"] == "none"


def test_clients_list_and_delete(s):
    ids = {c["client_id"] for c in s["clients"].json()}
    web, spa = s["web"].json()["client_id"], s["spa"].json()["client_id"]
    assert {web, spa, s["m2m_id"]} <= ids
    assert s["del_spa"].json() == {"deleted": spa}
    remaining = {row[0] for row in _db(s, "SELECT client_id FROM clients")}
    assert spa not in remaining and web in remaining
    assert spa in s["text_list"].stdout and web in s["text_list"].stdout  # before the delete


# --- apis, client grants, users ----------------------------------------------------------------


def test_apis_create_list_delete(s):
    api = s["api"].json()
    assert api["identifier"] == "https://api.test"
    assert api["scopes"] == ["read:things", "write:things"]
    listed = {a["identifier"]: a for a in s["apis"].json()}
    assert listed["https://api.test"]["name"] == "API"
    assert s["del_api"].json() == {"deleted": "https://api.test"}
    rows = _db(s, "SELECT identifier FROM resource_servers WHERE identifier = 'https://api.test'")
    assert rows == []


def test_client_grants_create_list_delete(s):
    grant = s["grant"].json()
    assert grant["client_id"] == s["m2m_id"]
    assert grant["audience"] == "https://api.test"
    assert grant["scopes"] == ["read:things"]
    listed = s["grants"].json()
    assert [g["id"] for g in listed] == [grant["id"]]
    assert listed[0]["scopes"] == "read:things"
    assert s["del_grant"].json() == {"deleted": grant["id"]}
    assert _db(s, "SELECT id FROM client_grants") == []


def test_users_create_list_delete(s):
    user = s["user"].json()
    assert user["email"] == "ada@example.test"
    assert user["email_verified"] is True
    assert user["user_id"]
    listed = {u["user_id"]: u for u in s["users"].json()}
    assert listed[user["user_id"]]["email"] == "ada@example.test"
    assert "password" not in json.dumps(s["users"].json()).lower()
    assert "correct horse 42" not in s["users"].stdout + s["user"].stdout
    assert s["del_user"].json() == {"deleted": user["user_id"]}
    assert _db(s, f"SELECT id FROM users WHERE id = '{user['user_id']}'") == []


def test_demo_seeds_once(s):
    first = s["demo1"].json()
    assert first["seeded"] is True
    assert first["client_id"] and first["client_secret"] and first["password"]
    assert first["email"] == "demo@example.com"
    assert first["api"] == "https://api.example.com"
    second = s["demo2"].json()
    assert second["seeded"] is False
    assert first["password"] not in s["demo2"].stdout
    assert first["client_secret"] not in s["demo2"].stdout
    demo_users = _db(s, "SELECT email FROM users WHERE email = 'demo@example.com'")
    assert len(demo_users) == 1


# --- bad arguments ------------------------------------------------------------------------


def test_unknown_client_type(s):
    _assert_clean_error(s["err_type"], "mainframe")


def test_http_redirect_uri_on_non_loopback_host(s):
    _assert_clean_error(s["err_http"], "http://app.test/cb")
    assert s["err_http"].stderr.strip().count("\n") == 0


def test_javascript_redirect_uri(s):
    _assert_clean_error(s["err_js"], "javascript:")
    assert s["err_js"].stderr.strip().count("\n") == 0


def test_duplicate_api(s):
    _assert_clean_error(s["err_dup_api"], "https://api.test")
    assert s["err_dup_api"].stderr.strip().count("\n") == 0


def test_grant_for_unknown_client(s):
    _assert_clean_error(s["err_grant"], "no-such-client")
    assert s["err_grant"].stderr.strip().count("\n") == 0


def test_delete_missing_user(s):
    _assert_clean_error(s["err_user"], "nobody@example.test")
    assert s["err_user"].stderr.strip().count("\n") == 0


def test_command_on_uninitialised_instance(s, tmp_path_factory):
    run = s["uninitialised"]
    _assert_clean_error(run, "init")
    assert run.stderr.strip().count("\n") == 0
    assert not (Path(run.argv[run.argv.index("--instance") + 1]) / "idp.sqlite3").exists()


def test_bad_arguments_changed_nothing(s):
    names = {row[0] for row in _db(s, "SELECT name FROM clients")}
    assert "X" not in names
    assert _db(s, "SELECT name FROM resource_servers WHERE name = 'Again'") == []


def test_python_dash_m_help(s):
    run = s["module_help"]
    assert run.returncode == 0, run.stderr
    assert "Usage:" in run.stdout
    for command in ("init", "keys", "clients", "apis", "client-grants", "users", "demo"):
        assert command in run.stdout
