"""The command line tells the running servers what it changed (idp.core.versions): ``idp
caches flush`` moves every family's version, and a change whose bump cannot reach Redis fails
the command saying so (the change is saved), since a server that saw no outage would keep what
it cached for up to CLIENT_CACHE_MAX_SECONDS."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from idp.cli import main
from idp.core.versions import FAMILIES, FileVersions

ENV = {"IDP_ARGON2_MEMORY_KIB": "1024", "IDP_ARGON2_TIME_COST": "1", "IDP_DATABASE_URL": None,
       "IDP_INSTANCE": None, "IDP_REDIS_URL": None}  # fmt: skip


def test_caches_flush_moves_every_version(tmp_path: Path) -> None:
    runner = CliRunner(env=ENV)
    assert runner.invoke(main, ["--instance", str(tmp_path), "init"]).exit_code == 0
    worker = FileVersions(tmp_path)
    before = {family: worker.current(family) for family in FAMILIES}
    done = runner.invoke(main, ["--instance", str(tmp_path), "--json", "caches", "flush"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"flushed": list(FAMILIES)}
    after = {family: worker.current(family) for family in FAMILIES}
    assert all(after[family] != before[family] for family in FAMILIES)


def test_a_change_the_servers_could_not_be_told_of_fails_the_command(tmp_path: Path) -> None:
    runner = CliRunner(env=ENV)
    assert runner.invoke(main, ["--instance", str(tmp_path), "init"]).exit_code == 0
    unreachable = CliRunner(env={**ENV, "IDP_REDIS_URL": "redis://127.0.0.1:1/0"})
    done = unreachable.invoke(main, ["--instance", str(tmp_path), "clients", "create",
                                     "--name", "Worker", "--type", "m2m"])  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "the change is saved, but the running servers were not told" in done.output
    assert "idp caches flush" in done.output
    listed = runner.invoke(main, ["--instance", str(tmp_path), "--json", "clients", "list"])
    assert "Worker" in [c["name"] for c in json.loads(listed.stdout)]  # saved all the same
