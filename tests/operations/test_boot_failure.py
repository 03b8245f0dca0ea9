"""A worker that cannot load the app stops ``idp serve`` (gunicorn: "Worker failed to boot",
exit code 3), on both servers, rather than being started again forever. The app's import is
broken in the server's processes only, by a ``sitecustomize`` on their ``PYTHONPATH``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import build_app
from tests.operations.served import IDP, SERVERS, server_env
from tests.ports import free_port

BROKEN = """
import importlib.abc, sys

class _Broken(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "idp.wsgi":
            raise RuntimeError("the app cannot be loaded (test)")
        return None

sys.meta_path.insert(0, _Broken())
"""


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_worker_that_cannot_boot_stops_the_server(tmp_path: Path, server_name: str) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BROKEN)
    (tmp_path / "instance").mkdir()
    port = free_port()
    app = build_app(tmp_path / "instance", port)
    env = server_env(f"http://127.0.0.1:{port}", app, PYTHONPATH=str(hook))
    done = subprocess.run(
        [*IDP, "--instance", str(tmp_path / "instance"), "serve", "--server", server_name,
         "--port", str(port), "--workers", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "the app cannot be loaded (test)" in output, output[-3000:]
    assert "failed to boot" in output.lower(), output[-3000:]
