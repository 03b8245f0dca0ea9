"""The command line tells the running servers what it changed (idp.core.versions): ``idp
caches flush`` moves every family's version, and a change whose bump cannot reach Redis fails
the command saying so (the change is saved), since a server that saw no outage would keep what
it cached for up to CLIENT_CACHE_MAX_SECONDS."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import idp.core.versions as versions_module
from idp.cli import main
from idp.cli.context import _servers_told
from idp.core.versions import CLIENTS, FAMILIES, FileVersions

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


def _stamps_refused(monkeypatch: pytest.MonkeyPatch, errno_: int) -> None:
    def refuse(*_args: object) -> None:
        raise OSError(errno_, os.strerror(errno_))

    monkeypatch.setattr(versions_module.os, "replace", refuse)


def _moved(versions: FileVersions) -> None:
    versions.bump(CLIENTS)  # what a command's commit does (Versions.watch)
    assert versions.pending() == {CLIENTS}


def test_stamps_with_postgresql_are_never_trusted_so_a_stamp_that_cannot_move_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stamp files with PostgreSQL vouch for no cache (FileVersions.verified): the servers keep
    # to CLIENT_CACHE_SECONDS whatever the stamps do, so the change is not kept for the hour.
    _stamps_refused(monkeypatch, errno.EACCES)
    versions = FileVersions(tmp_path, one_machine=False)
    _moved(versions)
    _servers_told(versions, tries=1)  # no ClickException


def test_a_read_only_file_system_is_seen_by_the_servers_too_so_it_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a read-only file system no process can move a stamp, and every worker's verified()
    # says so (os.access): their caches keep to their short lifetimes (a supported set-up).
    _stamps_refused(monkeypatch, errno.EROFS)
    versions = FileVersions(tmp_path)
    _moved(versions)
    _servers_told(versions, tries=1)


def test_a_stamp_this_user_may_not_move_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The servers' user may well write where this one may not: they would trust the stamps.
    _stamps_refused(monkeypatch, errno.EACCES)
    versions = FileVersions(tmp_path)
    _moved(versions)
    with pytest.raises(click.ClickException, match="not told"):
        _servers_told(versions, tries=1)
