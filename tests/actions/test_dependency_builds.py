"""Dependencies install in the background after a deploy (issue 11), seen through the CLI and
the token endpoint: the deploy returns while pip is still running (its build waits at a gate
the test holds shut), the action keeps running its built version meanwhile, and a version that
is building or failed can neither be bound nor rolled back to. Also the migration's default
and the bounds on what is kept of pip's output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from idp.actions import build
from idp.actions.models import Action, ActionVersion
from idp.cli import main
from idp.core import migrate
from idp.extensions import db
from tests.actions.gated import CX, GATED_ACTION, REQUIREMENT, Gate
from tests.actions.test_lifecycle import V1, claim, cli, idp, idp_fails

pytestmark = pytest.mark.usefixtures("fresh_chain")

SECRET = "tok-5e1f0c2a9d"


def version(op: Any, name: str, number: int) -> tuple[ActionVersion, int | None]:
    """The stored version and the action's live version number, read afresh."""
    with op.app.app_context():
        action = db.session.scalar(select(Action).where(Action.name == name))
        assert action is not None
        row = db.session.scalar(
            select(ActionVersion).where(
                ActionVersion.action_id == action.id, ActionVersion.number == number
            )
        )
        assert row is not None
        db.session.expunge_all()
        return row, action.live_version


def built(timeout: float = 300) -> None:
    assert build.wait(timeout), "the build did not end"


def test_deploy_returns_while_pip_runs_and_the_built_version_keeps_serving(
    op: Any, tmp_path: Path, gate: Gate
) -> None:
    client, audience = op.factory.m2m()
    source = tmp_path / "v.py"
    source.write_text(V1)
    idp(op, "actions", "deploy", str(source), "--name", "gated", "--trigger", CX)
    idp(op, "actions", "bind", "gated", "--trigger", CX)
    assert claim(op, client, audience) == 1

    source.write_text(GATED_ACTION)
    out = idp(op, "actions", "deploy", str(source), "--name", "gated", "--dependency", REQUIREMENT)
    # The command has returned; pip cannot have finished: the package's build waits at the gate.
    assert out["version"] == 2 and out["status"] == "building"
    row, live = version(op, "gated", 2)
    assert (row.build_status, row.deps_dir, live) == ("building", None, 1)
    assert claim(op, client, audience) == 1  # version 2 never runs unbuilt; version 1 serves
    history = idp(op, "actions", "versions", "gated")
    assert [(v["version"], v["status"], v["live"]) for v in history] == [
        (2, "building", False),
        (1, "built", True),
    ]
    refused = idp_fails(op, "actions", "rollback", "gated", "2")
    assert "dependencies are still being installed" in refused

    gate.open()
    built()
    row, live = version(op, "gated", 2)
    assert (row.build_status, row.deps_dir, live) == ("built", row.id, 2)
    assert "Successfully installed idp-gate-dep-1.0" in (row.build_output or "")
    assert claim(op, client, audience) == "gated"  # live now, with its dependency installed

    idp(op, "actions", "rollback", "gated", "1")  # a built version: allowed
    assert claim(op, client, audience) == 1


def test_a_failed_build_keeps_pips_output_and_binding_is_refused(
    op: Any, tmp_path: Path, gate: Gate
) -> None:
    client, audience = op.factory.m2m()
    source = tmp_path / "b.py"
    source.write_text(GATED_ACTION)
    idp(op, "actions", "deploy", str(source), "--name", "broken", "--trigger", CX,
        "--dependency", REQUIREMENT, "--secret", f"TOKEN={SECRET}")  # fmt: skip
    out = idp_fails(op, "actions", "bind", "broken", "--trigger", CX)
    assert "dependencies are still being installed" in out
    # nor is it run by the test runner without its dependencies
    out = idp_fails(op, "actions", "test", "broken", "--version", "1")
    assert "dependencies are still being installed" in out

    gate.open(f"fail: {SECRET}")  # the build prints the secret's value, then fails
    built()
    row, live = version(op, "broken", 1)
    assert (row.build_status, row.build_error, live) == ("failed", "pip exited with status 1", None)
    output = row.build_output or ""
    assert "refused by the gate" in output and "[secret TOKEN]" in output
    assert SECRET not in output
    assert "canary: None" in output  # the server's IDP_* settings never reach pip

    out = idp_fails(op, "actions", "bind", "broken", "--trigger", CX)
    assert "failed to build" in out and "pip exited with status 1" in out
    assert "refused by the gate" in out and SECRET not in out
    assert claim(op, client, audience) is None  # nothing was bound
    listing = cli().invoke(
        main, ["--instance", op.app.instance_path, "actions", "versions", "broken"]
    )
    assert "v1" in listing.output and "failed: pip exited with status 1" in listing.output


def test_versions_deployed_before_the_migration_are_built(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    cfg = migrate.alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.execute(
            text(
                'INSERT INTO actions (id, name, "trigger", code, dependencies, allowed_hosts,'
                " configuration, timeout_ms, live_version, created_at, updated_at) VALUES"
                " ('act_1', 'old', 'credentials-exchange', 'x', '[\"six\"]', '[]', '{}', 5000,"
                " 1, 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO action_versions (id, action_id, number, code, dependencies,"
                " deps_dir, created_by, created_at) VALUES"
                " ('ver_1', 'act_1', 1, 'x', '[\"six\"]', 'ver_1', 'cli', 0)"
            )
        )
        command.upgrade(cfg, "head")
        status = conn.execute(text("SELECT build_status FROM action_versions")).scalar_one()
    engine.dispose()
    assert status == "built"


def test_what_is_kept_of_pips_output_is_bounded_and_scrubbed() -> None:
    output = "".join(f"line {i}\n" for i in range(5000)) + f"\x1b[31mred\x1b[0m {SECRET}\r\n"
    kept = build.tail(build.scrub(output, {"TOKEN": SECRET}))
    assert len(kept.encode()) <= build.OUTPUT_BYTES
    assert kept.endswith("red [secret TOKEN]\n")
    assert kept.startswith("line ") and "line 4999\n" in kept and "line 0\n" not in kept
