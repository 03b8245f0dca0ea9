"""The CLI as a package (``idp/cli/``): ``--json`` before or after the subcommand prints the same
thing, every command takes it, and the layout rules that keep the command modules from
importing one another (in-process through click, on one SQLite instance)."""

from __future__ import annotations

import ast
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from idp.cli import main
from tests.unit.test_import_graph import ROOT, import_graph

EMAIL = "grace@example.test"
ENV = {
    "IDP_ARGON2_MEMORY_KIB": "1024",
    "IDP_ARGON2_TIME_COST": "1",
    "IDP_DATABASE_URL": None,  # SQLite in the instance folder
    "IDP_INSTANCE": None,
}


class Idp:
    """``idp --instance DIR ...`` in this process."""

    def __init__(self, instance: Path) -> None:
        self.instance = instance
        self.runner = CliRunner(env=ENV)

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--instance", str(self.instance), *args])

    def json(self, *args: str) -> Any:
        result = self("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idp]:
    cli = Idp(tmp_path_factory.mktemp("cli-package"))
    cli.json("init")
    web = cli.json("clients", "create", "--name", "Web", "--type", "regular_web",
                   "--redirect-uri", "https://app.test/cb")  # fmt: skip
    cli.json("apis", "create", "--identifier", "https://api.test", "--name", "API",
             "--scope", "read:things")  # fmt: skip
    m2m = cli.json("clients", "create", "--name", "Worker", "--type", "m2m")
    cli.json("client-grants", "create", "--client-id", m2m["client_id"],
             "--audience", "https://api.test", "--scope", "read:things")  # fmt: skip
    cli.json("users", "create", "--email", EMAIL, "--password", "long enough pw 42")
    cli.json("users", "unblock", "--email", EMAIL)  # a log event to list
    cli.json("mfa", "policy", web["client_id"], "always")
    cli.json("demo")
    cli.json("marketplace", "install", "user-claims", "--config", "namespace=https://app.test",
             "--bind")  # fmt: skip
    cli.json("actions", "secrets", "user-claims", "--set", "API_KEY=not-shown")
    yield cli


# Every command that reads and prints (the same output twice in a row); the consents list is
# empty (only a login records one), and the schema is JSON in both formats.
READS = [
    ("keys", "list"),
    ("clients", "list"),
    ("apis", "list"),
    ("client-grants", "list"),
    ("users", "list"),
    ("consents", "list", "--user", EMAIL),
    ("logs", "--limit", "5"),
    ("demo",),
    ("mfa", "list", "--email", EMAIL),
    ("actions", "list"),
    ("actions", "versions", "user-claims"),
    ("actions", "secrets", "user-claims"),
    ("actions", "executions"),
    ("actions", "schema", "post-login"),
    ("marketplace", "list"),
]


def _parse(command: tuple[str, ...], text: str) -> Any:
    if command[0] == "logs":  # one JSON object per line, so a --follow tail can be piped
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_json_after_the_subcommand_prints_what_json_before_does(
    idp: Idp, command: tuple[str, ...]
) -> None:
    before, after = idp("--json", *command), idp(*command, "--json")
    assert before.exit_code == 0 and after.exit_code == 0, (before.output, after.output)
    assert after.stdout == before.stdout
    parsed = _parse(command, after.stdout)  # JSON
    assert parsed or command[0] == "consents"
    text = idp(*command)
    assert text.exit_code == 0
    assert text.stdout != before.stdout or command[:2] == ("actions", "schema")


def test_json_after_a_group_and_between_options(idp: Idp) -> None:
    before = idp.json("clients", "list")
    assert json.loads(idp("clients", "--json", "list").stdout) == before
    users = idp("consents", "list", "--json", "--user", EMAIL)
    assert json.loads(users.stdout) == idp.json("consents", "list", "--user", EMAIL)


def test_json_after_a_command_that_writes(idp: Idp) -> None:
    result = idp("apis", "create", "--identifier", "https://other.test", "--name", "Other",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "id": json.loads(result.stdout)["id"],
        "identifier": "https://other.test",
        "name": "Other",
        "scopes": [],
    }
    deleted = idp("apis", "delete", "https://other.test", "--json")
    assert json.loads(deleted.stdout) == {"deleted": "https://other.test"}


def test_an_error_with_json_after_is_still_one_line(idp: Idp) -> None:
    result = idp("users", "delete", "nobody@example.test", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: ") and "nobody@example.test" in result.stderr
    bad = idp("actions", "deploy", "--name", "x", "--secret", "novalue", "--json")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "expected KEY=VALUE" in bad.stderr


def _commands(group: click.Group, path: str = "idp") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} {name}")


def test_every_command_takes_json() -> None:
    missing = [
        path
        for path, command in _commands(main)
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    ]
    assert missing == []
    assert len(list(_commands(main))) > 40


def test_the_commands_are_the_same() -> None:
    assert sorted(main.commands) == [
        "actions", "admins", "apis", "caches", "client-grants", "clients", "connections", "consents", "demo", "demo-app", "dev",
        "init", "keys", "log-streams", "logs", "marketplace", "mfa", "serve", "users",
    ]  # fmt: skip


# --- a few commands in their new modules ---------------------------------------------------


def test_mfa_policy_and_list(idp: Idp) -> None:
    web = next(c for c in idp.json("clients", "list") if c["name"] == "Web")
    result = idp("mfa", "policy", web["client_id"], "tenant")
    assert result.exit_code == 0 and result.stdout == f"{web['client_id']}: MFA tenant\n"
    listed = idp.json("mfa", "list", "--email", EMAIL)
    assert listed["factors"] == listed["methods"] == [] and listed["recovery_codes_left"] == 0
    unknown = idp("mfa", "list", "--email", "nobody@example.test")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: no user with email")


def test_marketplace_install_through_its_own_command_module(idp: Idp) -> None:
    actions = {a["name"]: a for a in idp.json("actions", "list")}
    assert actions["user-claims"]["marketplace"] == "user-claims"
    assert actions["user-claims"]["bound_at"] == 0 and actions["user-claims"]["live_version"] == 1
    text = idp("marketplace", "list").stdout
    assert "user-claims" in text and "post-login" in text
    missing = idp("marketplace", "install", "no-such-plugin")
    assert missing.exit_code == 1 and "no marketplace plugin" in missing.stderr


def test_keys_rotate_then_list(idp: Idp) -> None:
    """A rotation to ES256 makes an RS256 key with it, for the ID tokens of clients that ask
    for no algorithm (OIDC Discovery §3, Registration §2); a client may ask for ES256 then."""
    web = idp.json("clients", "create", "--name", "Ids", "--type", "regular_web",
                   "--redirect-uri", "https://ids.test/cb")  # fmt: skip
    refused = idp("clients", "update", web["client_id"], "--id-token-alg", "ES256")
    assert refused.exit_code == 1 and "id_token_signed_response_alg: ES256" in refused.output
    new = idp("keys", "rotate", "--alg", "ES256", "--now", "--json")
    kid = json.loads(new.stdout)["kid"]
    keys = {k["kid"]: k for k in idp.json("keys", "list")}
    assert keys[kid]["alg"] == "ES256" and keys[kid]["status"] == "active"
    [rs256] = [k for k in keys.values() if k["alg"] == "RS256" and k["status"] == "active"]
    assert rs256["signs_from"] == keys[kid]["signs_from"]  # one set, the same dates
    assert "is the current signing key" in idp("keys", "revoke", rs256["kid"]).output
    assert idp("keys", "list").stdout.count("\n") == len(keys)
    changed = idp.json("clients", "update", web["client_id"], "--id-token-alg", "ES256")
    assert changed["id_token_signed_response_alg"] == "ES256"
    reset = idp.json("clients", "update", web["client_id"], "--id-token-alg", "default")
    assert reset["id_token_signed_response_alg"] is None


def test_init_leaves_no_database_connection_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``idp init`` disposes its engine as the other commands do (``Ctx.session``): in-process,
    its pooled SQLite connection was left open for the garbage collector, which CPython 3.13
    reports as a ResourceWarning (an error in this suite)."""
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.dbapi2.connect  # what SQLAlchemy's pysqlite dialect calls

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3.dbapi2, "connect", spy)
    Idp(tmp_path).json("init")
    assert opened
    for con in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
            con.execute("SELECT 1")


# --- layout ------------------------------------------------------------------------------


def _top_level_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_context_imports_no_domain_code_at_module_level() -> None:
    ours = {m for m in _top_level_imports(ROOT / "cli" / "context.py") if m.startswith("idp")}
    assert ours == {"idp.core.errors"}
    # Inside its functions: the app factory and its extensions, nothing of a domain.
    assert import_graph()["idp.cli.context"] == {"idp", "idp.extensions", "idp.core.errors"}


def test_command_modules_import_no_other_command_module() -> None:
    graph = import_graph()
    shared = {"idp.cli.context", "idp.cli.actions_common"}
    for module, targets in graph.items():
        if module.startswith("idp.cli.") and module not in shared:
            assert {t for t in targets if t.startswith("idp.cli")} <= shared, module
    users_of_common = {m for m, t in graph.items() if "idp.cli.actions_common" in t}
    assert users_of_common == {"idp.cli.actions", "idp.cli.marketplace"}
    # Only the entry points import the command line.
    outside = {m for m, t in graph.items() if not m.startswith("idp.cli") and
               any(x == "idp.cli" or x.startswith("idp.cli.") for x in t)}  # fmt: skip
    assert outside == {"idp.__main__"}


def test_marketplace_service_has_no_command_line() -> None:
    imports = _top_level_imports(ROOT / "actions" / "marketplace.py")
    assert "click" not in imports
    assert not any(t.startswith("idp.cli") for t in import_graph()["idp.actions.marketplace"])


def test_no_private_name_is_imported_across_cli_modules() -> None:
    for path in sorted((ROOT / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("idp"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert private == [], (path.name, node.module, private)


def test_every_help_lists_one_line_per_command_with_examples() -> None:
    """``idp --help`` and each group's: a summary line per command (none cut short), and the
    common commands' examples name their real options (issue 20)."""
    import shlex

    from idp.cli.summaries import SUMMARIES, commands

    paths = {path: command for path, command in commands(main)}
    assert sorted(paths) == sorted(SUMMARIES)
    for path, command in paths.items():
        line = command.get_short_help_str(limit=200)
        assert line == SUMMARIES[path][0] and len(line) <= 64 and "..." not in line, path
    examples = {path: ex for path, (_line, ex) in SUMMARIES.items() if ex}
    for path in ("init", "serve", "demo", "clients create", "users create", "actions deploy",
                 "marketplace install", "users set-password"):  # fmt: skip
        assert path in examples, path
    for path, example in examples.items():
        words = shlex.split(example.split("| ")[-1])
        assert (
            words[words.index("idp") + 1 : words.index("idp") + 1 + len(path.split())]
            == path.split()
        )
        known = {o for p in paths[path].params for o in getattr(p, "opts", [])}
        assert {w.split("=")[0] for w in words if w.startswith("--")} <= known, path
        assert example in CliRunner().invoke(main, [*path.split(), "--help"]).output, path
    root = CliRunner().invoke(main, ["--help"]).output
    assert "idp demo-app" in root and "..." not in root.split("Commands:")[1]
