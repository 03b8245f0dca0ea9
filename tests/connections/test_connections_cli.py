"""The operators' side of connections through the CLI (issue 12, "Operators"): ``idp connections
create|update|delete`` for each kind (oidc, oauth2 with its profile map, a preset whose options
are filled in and overridden), secrets sealed at rest and never printed, the delete rules, and
``idp users show|link|unlink`` with the identities they list."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select, text

from idp.cli import main
from idp.connections import service as connections
from idp.connections import strategies
from idp.connections.models import Connection, ConnectionClient, Identity
from idp.extensions import db, services
from tests.actions.test_lifecycle import cli, idp, idp_fails

SECRET = "upstream-secret-Zq8v1xKp3"  # looked for in every output


def stored(op: Any, name: str) -> tuple[str, dict[str, Any]]:
    """The options column as the database holds it (raw text) and opened with the box."""
    with op.app.app_context():
        raw = db.session.execute(
            text("SELECT options FROM connections WHERE name = :n"), {"n": name}
        ).scalar_one()
        options = connections.get_connection(db.session, name).options
        return (raw if isinstance(raw, str) else json.dumps(raw)), strategies.unseal(
            services().box, options
        )


def run(op: Any, *args: str, stdin: str | None = None, as_json: bool = True) -> str:
    """The command's output, checked to carry no secret (text and --json alike)."""
    argv = ["--instance", op.app.instance_path, *(["--json"] if as_json else []), *args]
    result = cli().invoke(main, argv, input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and strategies.SEALED not in result.output
    return str(result.output)


def fails(op: Any, *args: str) -> str:
    out = idp_fails(op, *args)
    assert out.startswith("Error: ") and SECRET not in out
    return out


def test_create_oidc_seals_the_secret_and_enables_it(op: Any) -> None:
    client = op.factory.gen_client()
    made = json.loads(run(
        op, "connections", "create", "--strategy", "oidc", "--name", "corp-sso",
        "--issuer", "https://login.corp.test", "--client-id", "idp-at-corp",
        "--client-secret", SECRET, "--scope", "openid", "--scope", "email",
        "--display-name", "Corp SSO", "--icon-url", "https://corp.test/i.png",
        "--trust-email-verified", "--keep-tokens", "--domain-hint", "corp.test",
        "--no-userinfo", "--token-auth-method", "client_secret_post",
        "--response-mode", "form_post", "--authorization-param", "prompt=select_account",
        "--position", "7", "--enable-for", client.client_id,
    ))  # fmt: skip
    assert made["strategy"] == "oidc" and made["display_name"] == "Corp SSO"
    assert made["position"] == 7 and made["enabled_clients"] == [client.client_id]
    # what to register at the upstream (under the CLI's configured issuer)
    assert made["redirect_uri"].endswith("/login/callback/corp-sso")
    assert made["options"] == {
        "issuer": "https://login.corp.test", "client_id": "idp-at-corp",
        "client_secret": "(set)", "scopes": ["openid", "email"],
        "icon_url": "https://corp.test/i.png", "trust_email_verified": True,
        "keep_tokens": True, "domain_hint": "corp.test", "userinfo": False,
        "token_endpoint_auth_method": "client_secret_post", "response_mode": "form_post",
        "authorization_params": {"prompt": "select_account"},
    }  # fmt: skip
    raw, opened = stored(op, "corp-sso")
    assert SECRET not in raw and strategies.SEALED in raw  # sealed at rest
    assert opened["client_secret"] == SECRET  # and the box gives it back
    listed = {c["name"]: c for c in json.loads(run(op, "connections", "list"))}
    assert listed["corp-sso"] == made
    assert json.loads(run(op, "connections", "show", "corp-sso")) == made
    text_out = run(op, "connections", "show", "corp-sso", as_json=False)
    assert 'client_secret: "(set)"' in text_out and "issuer: " in text_out
    assert f"redirect_uri: {made['redirect_uri']}" in text_out
    assert "corp-sso" in run(op, "connections", "list", as_json=False)


def test_create_oauth2_with_its_profile_map(op: Any) -> None:
    made = json.loads(run(
        op, "connections", "create", "--strategy", "oauth2", "--name", "forge",
        "--client-id", "cid", "--client-secret", SECRET,
        "--authorization-url", "https://forge.test/oauth/authorize",
        "--token-url", "https://forge.test/oauth/token", "--profile-url", "https://forge.test/me",
        "--emails-url", "https://forge.test/me/emails",
        "--map", "user_id=id", "--map", "email=contact.email", "--map", "name=display_name",
    ))  # fmt: skip
    assert made["options"]["map"] == {
        "user_id": "id", "email": "contact.email", "name": "display_name"
    }  # fmt: skip
    assert made["options"]["emails_url"] == "https://forge.test/me/emails"
    assert made["options"]["client_secret"] == "(set)"


def test_a_preset_fills_its_options_and_flags_override_them(op: Any) -> None:
    made = json.loads(run(
        op, "connections", "create", "--strategy", "github", "--name", "github",
        "--client-id", "gh-id", "--client-secret", SECRET,
        "--token-url", "http://127.0.0.1:9/token",  # the tests point a preset at a local upstream
    ))  # fmt: skip
    preset = strategies.PRESETS["github"][1]
    assert made["options"]["token_url"] == "http://127.0.0.1:9/token"  # the override wins
    for key in ("authorization_url", "profile_url", "emails_url", "map", "scopes"):
        assert made["options"][key] == preset[key]  # the rest comes from the preset
    google = json.loads(run(
        op, "connections", "create", "--strategy", "google", "--name", "google",
        "--client-id", "g-id", "--client-secret", SECRET,
    ))  # fmt: skip
    assert google["options"]["issuer"] == "https://accounts.google.com"
    assert google["options"]["scopes"] == ["openid", "profile", "email"]


def test_the_secret_can_come_from_stdin(op: Any) -> None:
    run(op, "connections", "create", "--strategy", "gitlab", "--name", "gitlab-stdin",
        "--client-id", "gl", "--client-secret", "-", stdin=SECRET + "\n")  # fmt: skip
    raw, opened = stored(op, "gitlab-stdin")
    assert SECRET not in raw and opened["client_secret"] == SECRET
    out = fails(op, "connections", "create", "--strategy", "gitlab", "--name", "gitlab-empty",
                "--client-id", "gl", "--client-secret", "-")  # fmt: skip
    assert "nothing on stdin" in out


def test_a_private_key_is_sealed_too(op: Any, tmp_path: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "k.pem").write_bytes(key)
    made = json.loads(run(
        op, "connections", "create", "--strategy", "apple", "--name", "apple",
        "--client-id", "com.example.web", "--private-key-file", str(tmp_path / "k.pem"),
        "--key-id", "KID123", "--team-id", "TEAM42", "--token-auth-method", "private_key_jwt",
    ))  # fmt: skip
    assert made["options"]["private_key"] == "(set)"
    assert made["options"]["response_mode"] == "form_post"  # Apple's preset
    raw, opened = stored(op, "apple")
    assert "PRIVATE KEY" not in raw and opened["private_key"] == key.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "ldap", "--name", "x1"], "strategy must be one of"),
        (["--strategy", "oidc", "--name", "Bad_Name", "--issuer", "https://i.test",
          "--client-id", "c"], "a connection name is"),
        (["--strategy", "oauth2", "--name", "x2", "--issuer", "https://i.test",
          "--client-id", "c", "--authorization-url", "https://a.test", "--token-url",
          "https://a.test/t", "--profile-url", "https://a.test/p", "--map", "user_id=id"],
         "unknown option(s) for oauth2: issuer"),
        (["--strategy", "oidc", "--name", "x3", "--client-id", "c"], "needs option(s): issuer"),
        (["--strategy", "oauth2", "--name", "x4", "--client-id", "c", "--authorization-url",
          "https://a.test", "--token-url", "https://a.test/t", "--profile-url",
          "https://a.test/p", "--map", "email=email"], "needs map user_id"),
        (["--strategy", "oauth2", "--name", "x5", "--map", "user_id"], "--map takes name=value"),
        (["--strategy", "oidc", "--name", "x6", "--issuer", "ftp://i.test", "--client-id", "c"],
         "must be an http(s) URL"),
        (["--strategy", "oidc", "--name", "x7", "--issuer", "https://i.test", "--client-id",
          "c", "--token-auth-method", "private_key_jwt"], "needs the private_key option"),
        (["--strategy", "database", "--name", "database"], "exists"),
        (["--strategy", "google", "--name", "x8", "--client-id", "c", "--enable-for",
          "no-such-client"], "no client 'no-such-client'"),
    ],
)  # fmt: skip
def test_bad_creations_are_refused_whole(op: Any, args: list[str], message: str) -> None:
    out = fails(op, "connections", "create", *args)
    assert message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    names = {c["name"] for c in idp(op, "connections", "list")}
    assert not {"x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "Bad_Name"} & names


def test_update_merges_keeps_the_sealed_secret_and_validates_again(op: Any) -> None:
    run(op, "connections", "create", "--strategy", "oidc", "--name", "upd",
        "--issuer", "https://upd.test", "--client-id", "one", "--client-secret", SECRET,
        "--scope", "openid")  # fmt: skip
    raw_before, _ = stored(op, "upd")
    changed = json.loads(run(op, "connections", "update", "upd", "--client-id", "two",
                             "--display-name", "Upd", "--position", "3"))  # fmt: skip
    assert changed["options"]["client_id"] == "two"
    assert changed["options"]["scopes"] == ["openid"]  # merged: the others stay
    assert changed["display_name"] == "Upd" and changed["position"] == 3
    raw, opened = stored(op, "upd")
    assert opened["client_secret"] == SECRET  # kept sealed, as it was
    assert json.loads(raw)["client_secret"] == json.loads(raw_before)["client_secret"]
    run(op, "connections", "update", "upd", "--client-secret", "another-secret-value-42")
    raw, opened = stored(op, "upd")
    assert opened["client_secret"] == "another-secret-value-42"  # replaced,
    assert "another-secret-value-42" not in raw and strategies.SEALED in raw  # and sealed
    # invalid afterwards: refused, nothing changed
    assert "response_mode must be" in fails(op, "connections", "update", "upd",
                                            "--response-mode", "fragment")  # fmt: skip
    assert "unknown option(s) for oidc: token_url" in fails(
        op, "connections", "update", "upd", "--token-url", "https://x.test/t"
    )
    assert "needs option(s): issuer" in fails(op, "connections", "update", "upd",
                                              "--unset", "issuer")  # fmt: skip
    assert stored(op, "upd")[1]["client_id"] == "two"
    removed = json.loads(run(op, "connections", "update", "upd", "--unset", "scopes",
                             "--display-name", ""))  # fmt: skip
    assert "scopes" not in removed["options"] and removed["display_name"] is None
    assert removed["strategy"] == "oidc" and removed["name"] == "upd"
    assert "nothing to update" in fails(op, "connections", "update", "upd")
    assert "no connection 'nope'" in fails(op, "connections", "update", "nope", "--client-id", "x")
    assert "unknown option(s) for database" in fails(
        op, "connections", "update", "database", "--client-id", "x"
    )


def test_unsetting_a_preset_option_restores_the_preset(op: Any) -> None:
    run(op, "connections", "create", "--strategy", "linkedin", "--name", "li",
        "--client-id", "li", "--client-secret", SECRET, "--issuer", "http://127.0.0.1:9")  # fmt: skip
    back = json.loads(run(op, "connections", "update", "li", "--unset", "issuer"))
    assert back["options"]["issuer"] == strategies.PRESETS["linkedin"][1]["issuer"]


def _user_with(op: Any, connection: str, upstream: str) -> Any:
    user = op.factory.gen_user()
    run(op, "users", "link", user.user_id, "--connection", connection, "--upstream-id", upstream)
    return user


def social_only(op: Any, user_id: str) -> None:
    """Make a user as a first social login will: no database identity (nothing else here
    removes one, by design)."""
    with op.app.app_context():
        db.session.execute(
            delete(Identity).where(
                Identity.user_id == user_id, Identity.connection_id == "con_database"
            )
        )
        db.session.commit()


def test_delete_rules(op: Any) -> None:
    client = op.factory.gen_client()
    out = fails(op, "connections", "delete", "database", "--force")
    assert "database connection cannot be deleted" in out
    run(op, "connections", "create", "--strategy", "google", "--name", "doomed",
        "--client-id", "g", "--client-secret", SECRET, "--enable-for", client.client_id)  # fmt: skip
    linked = _user_with(op, "doomed", "g-1")
    out = fails(op, "connections", "delete", "doomed")
    assert "1 identity at 'doomed'" in out and "force" in out
    # a user whose only identity is there: even --force refuses, and names the user
    only = _user_with(op, "doomed", "g-2")
    social_only(op, only.user_id)
    out = fails(op, "connections", "delete", "doomed", "--force")
    assert "no identity" in out and only.user_id in out and linked.user_id not in out
    assert {c["name"] for c in idp(op, "connections", "list")} >= {"doomed"}
    run(op, "users", "delete", only.user_id)
    assert idp(op, "connections", "delete", "doomed", "--force") == {"deleted": "doomed"}
    with op.app.app_context():
        assert db.session.scalar(select(Connection).where(Connection.name == "doomed")) is None
        left = db.session.scalars(
            select(ConnectionClient.connection_id).where(
                ConnectionClient.client_id == client.client_id
            )
        ).all()
        assert left == ["con_database"]
    shown = idp(op, "users", "show", linked.user_id)
    assert [i["connection"] for i in shown["identities"]] == ["database"]  # user kept
    assert "no connection 'doomed'" in fails(op, "connections", "delete", "doomed")


def test_link_show_and_unlink(op: Any) -> None:
    run(op, "connections", "create", "--strategy", "gitlab", "--name", "lab",
        "--client-id", "gl", "--client-secret", SECRET)  # fmt: skip
    run(op, "connections", "create", "--strategy", "google", "--name", "gmail",
        "--client-id", "gg", "--client-secret", SECRET)  # fmt: skip
    user, other = op.factory.gen_user(), op.factory.gen_user()
    linked = json.loads(run(op, "users", "link", user.email, "--connection", "lab",
                            "--upstream-id", "lab|77", "--profile-json", '{"nickname": "x"}'))  # fmt: skip
    assert linked["user_id"] == user.user_id  # the user's id stays
    assert linked["identities"] == [
        {"provider": "database", "connection": "database", "user_id": user.user_id,
         "isSocial": False},
        {"provider": "gitlab", "connection": "lab", "user_id": "lab|77", "isSocial": True},
    ]  # fmt: skip
    assert idp(op, "users", "show", "--email", user.email) == linked
    assert idp(op, "users", "show", user.user_id) == linked
    assert "lab|77" in run(op, "users", "show", user.user_id, as_json=False)
    # one upstream account is one identity: not another user's, not twice
    assert "already linked to another user" in fails(
        op, "users", "link", other.user_id, "--connection", "lab", "--upstream-id", "lab|77"
    )
    assert "already linked to this user" in fails(
        op, "users", "link", user.user_id, "--connection", "lab", "--upstream-id", "lab|77"
    )
    assert "database identity comes with the user" in fails(
        op, "users", "link", other.user_id, "--connection", "database", "--upstream-id", "z"
    )
    assert "no user" in fails(op, "users", "link", "usr_nobody", "--connection", "lab",
                              "--upstream-id", "q")  # fmt: skip
    assert "no connection 'nope'" in fails(op, "users", "link", user.user_id, "--connection",
                                           "nope", "--upstream-id", "q")  # fmt: skip
    assert "not valid JSON" in fails(op, "users", "link", user.user_id, "--connection", "lab",
                                     "--upstream-id", "q", "--profile-json", "{")  # fmt: skip
    # unlink: the primary database identity and the last identity stay
    assert "primary" in fails(op, "users", "unlink", user.user_id, "--connection", "database",
                              "--upstream-id", user.user_id)  # fmt: skip
    after = json.loads(run(op, "users", "unlink", user.user_id, "--connection", "lab",
                           "--upstream-id", "lab|77"))  # fmt: skip
    assert after["user_id"] == user.user_id
    assert [i["connection"] for i in after["identities"]] == ["database"]
    assert "has no identity lab/lab|77" in fails(
        op, "users", "unlink", user.user_id, "--connection", "lab", "--upstream-id", "lab|77"
    )
    social = op.factory.gen_user()  # a social-only user: two identities, then one
    run(op, "users", "link", social.user_id, "--connection", "lab", "--upstream-id", "s-1")
    run(op, "users", "link", social.user_id, "--connection", "gmail", "--upstream-id", "s-2")
    social_only(op, social.user_id)
    run(op, "users", "unlink", social.user_id, "--connection", "lab", "--upstream-id", "s-1")
    assert "last identity" in fails(op, "users", "unlink", social.user_id, "--connection",
                                    "gmail", "--upstream-id", "s-2")  # fmt: skip
    assert "name the user" in fails(op, "users", "show")
