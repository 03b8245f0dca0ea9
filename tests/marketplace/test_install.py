"""``idp marketplace list|install``: manifest checks, settings validation, what install makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idp.actions import marketplace, service
from idp.actions.models import Action
from idp.cli import main
from idp.extensions import db
from tests.marketplace.conftest import cli, idp, idp_fails

pytestmark = pytest.mark.usefixtures("fresh_chain")


@pytest.fixture
def fresh_chain(op: Any) -> None:
    op.factory.clear_actions()


def test_list_shows_slug_title_and_trigger(op: Any) -> None:
    rows = {r["slug"]: r for r in idp(op, "marketplace", "list")}
    assert rows["mfa-by-geography"]["trigger"] == "post-login"
    assert rows["new-user-row"]["trigger"] == "post-user-registration"
    assert rows["user-claims"]["title"] == "Add user claims to tokens"
    text = cli().invoke(main, ["--instance", op.app.instance_path, "marketplace", "list"]).output
    assert "login-webhook" in text and "post-login" in text


def test_install_makes_an_ordinary_deployed_action(op: Any, receiver: Any) -> None:
    data = idp(
        op, "marketplace", "install", "login-webhook", "--name", "hook",
        "--config", f"url={receiver.url}/x", "--config", "fields=user.email,request.ip",
        "--secret", "token=abcd1234",
    )  # fmt: skip
    assert data["version"] == 1
    assert data["action"]["marketplace"] == "login-webhook"
    assert data["action"]["bound_at"] is None  # not bound without --bind
    assert data["action"]["allowed_hosts"] == [receiver.host]
    assert data["configuration"] == {
        "url": f"{receiver.url}/x",
        "fields": ["user.email", "request.ip"],
        "block_login_on_failure": False,
    }
    with op.app.app_context():
        action = service.get_action(db.session, "hook")
        assert service.secret_names(db.session, action) == ["token"]
        assert action.live_version == 1 and action.trigger == "post-login"
        assert "login-webhook 1.0.0" in service.versions(db.session, action)[0].created_by
    # reinstalling upgrades: earlier settings and secrets are kept, given ones replaced
    again = idp(op, "marketplace", "install", "login-webhook", "--name", "hook", "--bind",
                "--config", "block_login_on_failure=yes")  # fmt: skip
    assert again["version"] == 2 and again["action"]["bound_at"] == 0
    assert again["configuration"]["fields"] == ["user.email", "request.ip"]
    assert again["configuration"]["block_login_on_failure"] is True
    # --bind again does not bind twice
    assert (
        idp(op, "marketplace", "install", "login-webhook", "--name", "hook", "--bind")["action"][
            "bound_at"
        ]
        == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-plugin"], "no marketplace plugin"),
        (["../user-claims"], "no marketplace plugin"),
        (["user-claims"], "needs --config namespace"),
        (
            ["user-claims", "--config", "namespace=https://x", "--config", "colour=red"],
            "no setting colour",
        ),
        (
            [
                "user-claims",
                "--config",
                "namespace=https://x",
                "--config",
                "access_token_fields=email,password",
            ],
            "'password' is not one of",
        ),
        (
            [
                "user-claims",
                "--config",
                "namespace=https://x",
                "--config",
                "include_identities=maybe",
            ],
            "true or false",
        ),
        (["user-claims", "--config", "namespace"], "expected KEY=VALUE"),
        (
            ["user-claims", "--config", "namespace=https://x", "--secret", "token=x"],
            "has no secret token",
        ),
        (["login-webhook", "--config", "url=https://hooks.example.com/x"], "needs --secret token"),
        (
            [
                "login-webhook",
                "--config",
                "url=ftp://hooks.example.com/x",
                "--secret",
                "token=abcd",
            ],
            "absolute https URL",
        ),
        (
            [
                "login-webhook",
                "--config",
                "url=https://u:p@hooks.example.com/x",
                "--secret",
                "token=abcd",
            ],
            "credentials",
        ),
        (
            [
                "login-webhook",
                "--config",
                "url=https://hooks.example.com/x",
                "--config",
                "fields=secrets.token",
                "--secret",
                "token=abcd",
            ],
            "is not one of",
        ),
        (["mfa-by-geography", "--config", "continents=EU,Atlantis"], "'Atlantis' is not one of"),
    ],
)
def test_install_refuses_bad_settings(op: Any, args: list[str], message: str) -> None:
    assert message in idp_fails(op, "marketplace", "install", *args)
    with op.app.app_context():
        assert db.session.query(Action).count() == 0


def test_install_never_replaces_an_action_it_did_not_make(op: Any) -> None:
    op.factory.gen_action(
        "user-claims", "post-login", "def on_execute_post_login(event, api):\n    pass\n"
    )
    out = idp_fails(op, "marketplace", "install", "user-claims", "--config", "namespace=https://x")
    assert "use --name" in out


def test_defaults_are_applied_and_typed() -> None:
    plugin = marketplace.get("mfa-by-geography")
    assert marketplace.configure(plugin, {}) == {
        "continents": ["EU"],
        "countries": [],
        "when_unknown": False,
        "allow_remember_browser": False,
    }
    typed = marketplace.configure(plugin, {"countries": ["US"], "when_unknown": True})
    assert typed["countries"] == ["US"] and typed["when_unknown"] is True
    assert marketplace.configure(plugin, {"continents": " EU , AS ,"})["continents"] == ["EU", "AS"]


def test_allowed_hosts_come_from_the_url_settings() -> None:
    plugin = marketplace.get("new-user-row")
    base = {"connection": "database", "columns": []}
    assert marketplace.allowed_hosts(plugin, {**base, "url": "https://Sheets.Example.com/a"}) == [
        "sheets.example.com"
    ]
    assert marketplace.allowed_hosts(plugin, {**base, "url": "https://h.example:8443/a"}) == [
        "h.example:8443"
    ]
    assert marketplace.allowed_hosts(marketplace.get("user-claims"), {}) == []


def _plugin(tmp_path: Path, manifest: str, code: str = "") -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "manifest.toml").write_text(manifest)
    (folder / "action.py").write_text(code or "def on_execute_post_login(event, api):\n    pass\n")
    return folder


GOOD = 'slug = "broken"\ntitle = "t"\nversion = "1"\nkind = "action"\ntrigger = "post-login"\ndescription = "d"\n'


@pytest.mark.parametrize(
    ("manifest", "code", "message"),
    [
        (GOOD.replace('kind = "action"', 'kind = "theme"'), "", "kind must be"),
        (GOOD.replace('"broken"', '"other"'), "", "slug must be the folder name"),
        (GOOD.replace('"post-login"', '"pre-login"'), "", "unknown trigger"),
        (GOOD + "colour = 1\n", "", "unknown keys"),
        (GOOD + '[[config]]\nname = "x"\ntype = "int"\n', "", "type is one of"),
        (
            GOOD + '[[config]]\nname = "x"\ntype = "list"\nchoices = ["a"]\ndefault = ["b"]\n',
            "",
            "not one of",
        ),
        (
            GOOD + '[[config]]\nname = "x"\ntype = "bool"\n[egress]\nfrom_config = ["x"]\n',
            "",
            "not a string config",
        ),
        (GOOD, "def main(event, api):\n    pass\n", "must define on_execute_post_login"),
    ],
)
def test_bad_manifests_are_refused(tmp_path: Path, manifest: str, code: str, message: str) -> None:
    with pytest.raises(service.ActionError, match=message):
        marketplace.load(_plugin(tmp_path, manifest, code))


def test_the_marketplace_folder_can_be_moved(tmp_path: Path, monkeypatch: Any) -> None:
    _plugin(tmp_path, GOOD)
    monkeypatch.setenv("IDP_MARKETPLACE_DIR", str(tmp_path))
    assert [p.slug for p in marketplace.catalog()] == ["broken"]


def test_a_missing_marketplace_folder_is_a_clear_error(
    op: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("IDP_MARKETPLACE_DIR", str(tmp_path / "nowhere"))
    assert "no marketplace folder" in idp_fails(op, "marketplace", "list")
