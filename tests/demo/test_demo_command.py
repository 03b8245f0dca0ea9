"""``idp demo`` and ``make run`` print and register URLs for the port and issuer they are given
(issue 20): every URL ``idp demo`` prints is on the issuer or on the demo app's origin, the demo
client's redirect URIs are the demo app's, a second run keeps the data and names the file with
the password, and ``idp users set-password`` resets it (in-process through click, SQLite)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from idp.cli import main

ENV: dict[str, str | None] = {
    "IDP_ARGON2_MEMORY_KIB": "1024",
    "IDP_ARGON2_TIME_COST": "1",
    "IDP_DATABASE_URL": None,
    "IDP_INSTANCE": None,
    "IDP_DEMO_APP_URL": None,
}
URL = re.compile(r"https?://[^\s)'\"]+")
API_IDENTIFIER = "https://api.example.com"  # an audience, printed as a name, never visited
ROOT = Path(__file__).resolve().parents[2]


def idp(instance: Path, *args: str, issuer: str) -> Result:
    runner = CliRunner(env={**ENV, "IDP_ISSUER": issuer})
    result = runner.invoke(main, ["--instance", str(instance), *args])
    assert result.exit_code == 0, result.output
    return result


def redirect_uris(instance: Path) -> tuple[list[str], list[str]]:
    data = json.loads(
        idp(instance, "--json", "clients", "list", issuer="http://localhost:5000").stdout
    )
    demo = next(c for c in data if c["name"] == "Demo web app")
    return demo["redirect_uris"], demo["post_logout_redirect_uris"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    inst = tmp_path_factory.mktemp("demo") / "instance"
    issuer = "http://localhost:5077"
    idp(inst, "init", issuer=issuer)
    first = idp(inst, "demo", issuer=issuer).stdout
    first_uris = redirect_uris(inst)
    credentials = json.loads((inst / "demo.json").read_text())
    mode = stat.S_IMODE((inst / "demo.json").stat().st_mode)
    moved = idp(inst, "demo", issuer="http://127.0.0.1:6001").stdout  # the next run, elsewhere
    moved_json = json.loads(idp(inst, "--json", "demo", issuer="http://127.0.0.1:6001").stdout)
    moved_uris = redirect_uris(inst)
    explicit = json.loads(
        idp(inst, "--json", "demo", "--app-url", "http://localhost:7100/", issuer=issuer).stdout
    )
    return {
        "inst": inst, "first": first, "first_uris": first_uris, "credentials": credentials,
        "mode": mode, "moved": moved, "moved_json": moved_json, "moved_uris": moved_uris,
        "explicit": explicit, "explicit_uris": redirect_uris(inst),
    }  # fmt: skip


def test_every_printed_url_is_on_the_issuer_or_the_demo_app(runs):
    urls = [u for u in URL.findall(runs["first"]) if u != API_IDENTIFIER]
    assert urls, runs["first"]
    for url in urls:
        assert url.startswith(("http://localhost:5077/", "http://localhost:5078/")) or url in {
            "http://localhost:5077",
            "http://localhost:5078",
        }, url
    assert "http://localhost:5078/callback" in urls
    assert "http://localhost:5077/.well-known/openid-configuration" in urls
    assert ":5000" not in runs["first"] and ":8080" not in runs["first"]


def test_the_demo_client_is_registered_where_the_demo_app_listens(runs):
    assert runs["first_uris"] == (
        ["http://localhost:5078/callback"],
        ["http://localhost:5078/"],
    )
    creds = runs["credentials"]
    assert creds["issuer"] == "http://localhost:5077"
    assert creds["app_url"] == "http://localhost:5078"
    assert creds["client_secret"] in runs["first"] and creds["password"] in runs["first"]
    assert runs["mode"] == 0o600


def test_a_second_run_keeps_the_data_and_follows_the_new_port(runs):
    moved, data = runs["moved"], runs["moved_json"]
    creds = runs["credentials"]
    assert "already there, kept" in moved
    assert creds["password"] not in moved and creds["client_secret"] not in moved
    assert f"password       in {runs['inst'] / 'demo.json'}" in moved
    assert data["seeded"] is False and data["client_id"] == creds["client_id"]
    assert data["app_url"] == "http://127.0.0.1:6002"
    assert runs["moved_uris"] == (["http://127.0.0.1:6002/callback"], ["http://127.0.0.1:6002/"])
    for url in URL.findall(moved):
        assert url == API_IDENTIFIER or url.startswith(
            ("http://127.0.0.1:6001", "http://127.0.0.1:6002")
        )
    assert runs["explicit"]["redirect_uri"] == "http://localhost:7100/callback"
    assert runs["explicit_uris"][0] == ["http://localhost:7100/callback"]
    # the secret stayed valid: the file still holds it, nothing was rotated
    assert (
        json.loads((runs["inst"] / "demo.json").read_text())["client_secret"]
        == creds["client_secret"]
    )


def test_a_lost_credentials_file_gives_the_app_a_new_secret(tmp_path):
    issuer = "http://localhost:5000"
    idp(tmp_path, "init", issuer=issuer)
    idp(tmp_path, "demo", issuer=issuer)
    old = json.loads((tmp_path / "demo.json").read_text())
    (tmp_path / "demo.json").unlink()
    again = idp(tmp_path, "demo", issuer=issuer).stdout
    new = json.loads((tmp_path / "demo.json").read_text())
    assert new["client_id"] == old["client_id"] and new["client_secret"] != old["client_secret"]
    assert new["client_secret"] in again
    assert new["password"] is None and "idp users set-password --email demo@example.com" in again

    reset = json.loads(
        idp(tmp_path, "--json", "users", "set-password", "--email", "demo@example.com",
            issuer=issuer).stdout
    )  # fmt: skip
    assert len(reset["password"]) >= 12
    assert json.loads((tmp_path / "demo.json").read_text())["password"] == reset["password"]
    runner = CliRunner(env={**ENV, "IDP_ISSUER": issuer})
    chosen = runner.invoke(
        main, ["--instance", str(tmp_path), "users", "set-password", "--email",
               "demo@example.com", "--password", "-"], input="lantern-orchard-47\n",
    )  # fmt: skip
    assert chosen.exit_code == 0 and "lantern-orchard-47" not in chosen.output
    assert json.loads((tmp_path / "demo.json").read_text())["password"] == "lantern-orchard-47"
    short = runner.invoke(
        main, ["--instance", str(tmp_path), "users", "set-password", "--email",
               "demo@example.com", "--password", "short"],
    )  # fmt: skip
    assert short.exit_code == 1 and "at least 8" in short.output


def _make_run(**variables: str) -> str:
    """``make -n run``: the commands ``make run`` would execute, none executed."""
    args = [f"{k}={v}" for k, v in variables.items()]
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", "INSTANCE=/nonexistent/instance", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_run_honours_port_host_and_issuer():
    out = _make_run(PORT="5077")
    assert (
        "IDP_ISSUER=http://localhost:5077 .venv/bin/idp --instance /nonexistent/instance init"
        in out
    )
    assert "demo --app-url http://localhost:5078" in out
    assert "demo-app --host 127.0.0.1 --port 5078" in out
    assert "serve --host 127.0.0.1 --port 5077" in out
    assert ":5000" not in out and ":5001" not in out

    out = _make_run(PORT="6100", HOST="0.0.0.0", IDP_ISSUER="https://idp.example.test")
    assert "IDP_ISSUER=https://idp.example.test .venv/bin/idp" in out
    assert "serve --host 0.0.0.0 --port 6100" in out and "--port 6101" in out
    assert "--app-url http://localhost:6101" in out
