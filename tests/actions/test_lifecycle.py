"""Drafts, versions, rollback, bindings, dependencies and the test runner, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from idp.cli import main
from tests.conftest import TEST_DB_URL
from tests.helpers import jwt_parts

pytestmark = pytest.mark.usefixtures("fresh_chain")

V1 = "def on_execute_credentials_exchange(event, api):\n    api.access_token.set_custom_claim('https://x/v', 1)\n"
V2 = "def on_execute_credentials_exchange(event, api):\n    api.access_token.set_custom_claim('https://x/v', 2)\n"


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def cli() -> CliRunner:
    """The CLI reads the instance folder; the test server's database may be PostgreSQL."""
    return CliRunner(env={"IDP_DATABASE_URL": TEST_DB_URL} if TEST_DB_URL else {})


def idp(op: Any, *args: str) -> Any:
    result = cli().invoke(
        main, ["--instance", op.app.instance_path, "--json", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def idp_fails(op: Any, *args: str) -> str:
    result = cli().invoke(main, ["--instance", op.app.instance_path, *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return str(result.output)


def claim(op: Any, client: Any, audience: str) -> Any:
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return jwt_parts(resp.json()["access_token"])[1].get("https://x/v")


def test_draft_deploy_rollback_and_bindings(op: Any, tmp_path: Path) -> None:
    client, audience = op.factory.m2m()
    source = tmp_path / "v.py"
    source.write_text(V1)
    idp(op, "actions", "deploy", str(source), "--name", "ver", "--trigger", "credentials-exchange")
    assert claim(op, client, audience) is None  # deployed but not bound: not in the chain
    idp(op, "actions", "bind", "ver", "--trigger", "credentials-exchange")
    assert claim(op, client, audience) == 1

    source.write_text(V2)
    idp(op, "actions", "create", str(source), "--name", "ver", "--trigger", "credentials-exchange")
    assert claim(op, client, audience) == 1  # a saved draft never touches live traffic
    idp(op, "actions", "deploy", "--name", "ver")
    assert claim(op, client, audience) == 2

    history = idp(op, "actions", "versions", "ver")
    assert [v["version"] for v in history] == [2, 1]
    assert [v["live"] for v in history] == [True, False]
    assert all(v["created_by"].startswith("cli") for v in history)

    idp(op, "actions", "rollback", "ver", "1")
    assert claim(op, client, audience) == 1

    # test runner: the draft (v2 code) runs without affecting anyone
    result = idp(op, "actions", "test", "ver")
    assert result["commands"][0]["args"] == ["https://x/v", 2]
    assert result["error"] is None and result["duration_ms"] > 0
    assert claim(op, client, audience) == 1

    idp(op, "actions", "unbind", "ver", "--trigger", "credentials-exchange")
    assert claim(op, client, audience) is None


def test_single_binding_moves(op: Any, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        source = tmp_path / f"{name}.py"
        source.write_text(V1)
        idp(
            op,
            "actions",
            "deploy",
            str(source),
            "--name",
            name,
            "--trigger",
            "credentials-exchange",
        )
        idp(op, "actions", "bind", name, "--trigger", "credentials-exchange")
    idp(op, "actions", "move", "c", "--trigger", "credentials-exchange", "--position", "0")
    rows = idp(op, "actions", "list", "--trigger", "credentials-exchange")
    order = sorted(rows, key=lambda r: r["bound_at"])
    assert [r["name"] for r in order] == ["c", "a", "b"]
    assert "already bound" in idp_fails(
        op, "actions", "bind", "b", "--trigger", "credentials-exchange"
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def on_execute_credentials_exchange(event, api):\n    x = (\n", "syntax error"),
        (
            "def something_else(event, api):\n    pass\n",
            "must define on_execute_credentials_exchange",
        ),
        ("x = '" + "a" * 100_001 + "'\n", "larger than"),
    ],
)
def test_bad_code_is_refused_at_deploy(op: Any, tmp_path: Path, code: str, message: str) -> None:
    source = tmp_path / "bad.py"
    source.write_text(code)
    out = idp_fails(
        op, "actions", "deploy", str(source), "--name", "bad", "--trigger", "credentials-exchange"
    )
    assert message in out


def test_secrets_are_write_only(op: Any, tmp_path: Path) -> None:
    source = tmp_path / "s.py"
    source.write_text(V1)
    idp(op, "actions", "deploy", str(source), "--name", "s", "--trigger", "credentials-exchange",
        "--secret", "TOKEN=very-secret-value")  # fmt: skip
    names = idp(op, "actions", "secrets", "s")
    assert names == ["TOKEN"]
    result = cli().invoke(main, ["--instance", op.app.instance_path, "actions", "secrets", "s"])
    assert "very-secret-value" not in result.output
    raw = Path(op.app.instance_path) / "idp.sqlite3"
    if raw.exists():
        assert b"very-secret-value" not in raw.read_bytes()  # encrypted at rest


def test_dependencies_install_into_the_version_and_load(op: Any) -> None:
    client, audience = op.factory.m2m()
    op.factory.gen_action(
        "with-deps",
        "credentials-exchange",
        "import six\n"
        "def on_execute_credentials_exchange(event, api):\n"
        "    api.access_token.set_custom_claim('https://x/v', six.__version__)\n"
        "    try:\n"
        "        open(six.__file__, 'a').write('# tampered')\n"
        "    except OSError as exc:\n"
        "        api.access_token.set_custom_claim('https://x/ro', type(exc).__name__)\n",
        dependencies=["six==1.16.0"],
    )
    resp = requests.post(
        f"{op.url}/oauth/token",
        data={"grant_type": "client_credentials", "audience": audience},
        auth=client.basic,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    claims = jwt_parts(resp.json()["access_token"])[1]
    assert claims["https://x/v"] == "1.16.0"
    assert claims["https://x/ro"] in {"OSError", "PermissionError"}
