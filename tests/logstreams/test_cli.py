"""``idp log-streams create|list|pause|resume|delete`` and ``idp logs --from/--follow`` on a
fresh instance (SQLite), through the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from idp import create_app
from idp.cli import main
from idp.extensions import db
from idp.logstreams.models import LogStream
from tests.logstreams.conftest import emit

HOOK = "https://127.0.0.1:8443/idp"


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    assert CliRunner().invoke(main, ["--instance", str(tmp_path), "init"]).exit_code == 0
    (tmp_path / "config.toml").write_text(
        'log_stream_hosts = "127.0.0.1"\nlog_stream_allow_networks = "127.0.0.0/8"\n'
        "log_stream_gap_seconds = 1\n"
    )
    return tmp_path


def idp(
    instance: Path, *argv: str, ok: bool = True, stdin: str | None = None, raw: bool = False
) -> Any:
    result = CliRunner().invoke(main, ["--instance", str(instance), *argv], input=stdin)
    assert (result.exit_code == 0) is ok, result.output
    if ok and "--json" in argv and not raw:
        return json.loads(result.output)
    return result.output


def test_create_list_pause_resume_delete(instance: Path) -> None:
    made = idp(instance, "log-streams", "create", "--name", "siem", "--endpoint", HOOK,
               "--authorization", "-", "--json", stdin="Bearer from-stdin\n")  # fmt: skip
    assert made["name"] == "siem" and made["status"] == "active" and made["signing_secret"]
    assert made["sink"]["httpEndpoint"] == HOOK
    [listed] = idp(instance, "log-streams", "list", "--json")
    assert listed["id"] == made["id"] and "signing_secret" not in listed
    assert idp(instance, "log-streams", "pause", "siem", "--json")["status"] == "paused"
    assert idp(instance, "log-streams", "resume", made["id"], "--json")["status"] == "active"
    text = idp(instance, "log-streams", "list")
    assert "siem" in text and "active" in text and "from-stdin" not in text
    app = create_app(instance_path=instance)
    with app.app_context():
        row = db.session.scalar(select(LogStream))
        assert row is not None and row.auth_header is not None
        assert b"from-stdin" not in row.auth_header and made["signing_secret"].encode() not in (
            row.secret
        )
        db.session.close()  # its connection back to the pool first, or dispose() leaves it open
        db.engine.dispose()
    assert idp(instance, "log-streams", "delete", "siem", "--json") == {"deleted": made["id"]}
    assert idp(instance, "log-streams", "list", "--json") == []


def test_refusals_are_one_line_errors(instance: Path) -> None:
    idp(instance, "log-streams", "create", "--name", "a", "--endpoint", HOOK)
    out = idp(instance, "log-streams", "create", "--name", "a", "--endpoint", HOOK, ok=False)
    assert "Error:" in out and "already exists" in out and "Traceback" not in out
    out = idp(instance, "log-streams", "create", "--name", "b", "--endpoint",
              "https://elsewhere.example/x", ok=False)  # fmt: skip
    assert "LOG_STREAM_HOSTS" in out
    assert "no log stream" in idp(instance, "log-streams", "pause", "nope", ok=False)
    text = idp(instance, "log-streams", "create", "--name", "c", "--endpoint", HOOK)
    assert "signing secret (shown once):" in text


def test_logs_from_lists_the_events_after_an_id(instance: Path) -> None:
    app = create_app(instance_path=instance)
    ids = emit(app, 4)
    with app.app_context():
        db.engine.dispose()
    out = idp(instance, "logs", "--from", str(ids[0]), "--json", raw=True)
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids[1:]


def test_logs_follow_prints_new_events_until_ctrl_c(instance: Path) -> None:
    app = create_app(instance_path=instance)
    [first] = emit(app, 1)
    argv = [sys.executable, "-m", "idp", "--instance", str(instance), "logs", "--follow",
            "--from", str(first), "--poll", "0.05", "--json"]  # fmt: skip
    lines: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout
        reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")))
        reader.start()
        try:
            later = emit(app, 3)
            deadline = time.monotonic() + 30
            while len(lines) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)
            with app.app_context():
                db.engine.dispose()
        errors = proc.stderr.read()
    assert [json.loads(line)["id"] for line in lines] == later
    assert "Traceback" not in errors
