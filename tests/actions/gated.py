"""A real pip dependency whose install waits until the test says so: ``idp-gate-dep==1.0``.

A pytest plugin of the suite (tests/conftest.py): its fixtures ``gate`` and ``fresh_chain``
serve the Actions and management tests of dependency builds.

The package is an sdist in a local find-links folder with an in-tree build backend (no
setuptools, nothing fetched). Its build blocks until the gate file exists, then builds a
wheel (``import idp_gate_dep``; ``idp_gate_dep.VALUE == "gated"``), or, when the file says
``fail ...``, prints that line and the ``IDP_CANARY`` variable it can see, and fails. So a
test knows for certain that pip is still running (the gate is closed) without timing anything.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REQUIREMENT = "idp-gate-dep==1.0"
CX = "credentials-exchange"
# A credentials-exchange action that needs the gated package.
GATED_ACTION = (
    "import idp_gate_dep\n"
    "def on_execute_credentials_exchange(event, api):\n"
    "    api.access_token.set_custom_claim('https://x/v', idp_gate_dep.VALUE)\n"
)

_PYPROJECT = """\
[build-system]
requires = []
build-backend = "gate_backend"
backend-path = ["."]
"""

_PKG_INFO = "Metadata-Version: 2.1\nName: idp-gate-dep\nVersion: 1.0\n"

_BACKEND = """\
import base64, hashlib, os, sys, time, zipfile

GATE = {gate!r}
DIST = "idp_gate_dep-1.0"


def _wait():
    deadline = time.monotonic() + 300  # a test that never opens the gate does not hang pip
    while not os.path.exists(GATE):
        if time.monotonic() > deadline:
            raise SystemExit("the gate was never opened")
        time.sleep(0.02)
    word = open(GATE).read()
    if word.startswith("fail"):
        print("gate says:", word, "| canary:", os.environ.get("IDP_CANARY"), file=sys.stderr)
        raise SystemExit("refused by the gate")


def _digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _wait()
    files = {{
        "idp_gate_dep/__init__.py": b"VALUE = 'gated'\\n",
        DIST + ".dist-info/METADATA": {pkg_info!r}.encode(),
        DIST + ".dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: gate\\n"
        b"Root-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = [f"{{p}},sha256={{_digest(d)}},{{len(d)}}" for p, d in files.items()]
    files[DIST + ".dist-info/RECORD"] = ("\\n".join(record) + f"\\n{{DIST}}.dist-info/RECORD,,\\n").encode()
    name = DIST + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return name
"""


class Gate:
    """The gate file the package's build waits for."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, word: str = "ok") -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(word)
        tmp.rename(self.path)  # whole, never half-written, when the build looks


def _sdist(folder: Path, gate: Path) -> None:
    members = {
        "pyproject.toml": _PYPROJECT,
        "PKG-INFO": _PKG_INFO,
        "gate_backend.py": _BACKEND.format(gate=str(gate), pkg_info=_PKG_INFO),
    }
    with tarfile.open(folder / "idp_gate_dep-1.0.tar.gz", "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"idp_gate_dep-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@contextmanager
def gated(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """For a test's ``gate`` fixture: pip (run by the server in this process) finds only the
    gated package, builds it afresh every time (no wheel cache), and would see
    ``IDP_CANARY`` if the server passed its own environment on."""
    index = tmp / "index"
    index.mkdir()
    gate = Gate(tmp / "gate")
    _sdist(index, gate.path)
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("IDP_CANARY", "canary-from-the-server-environment")
    yield gate
    if not gate.path.exists():  # a failed test: let its build end now
        gate.open("fail: the test ended")


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    with gated(tmp_path, monkeypatch) as g:
        yield g


@pytest.fixture
def fresh_chain(op: Any) -> Iterator[None]:
    """The test starts and ends with no action bound: a chain left bound would run on other
    modules' token requests. (Modules use it with ``pytest.mark.usefixtures``.)"""
    op.factory.clear_actions()
    yield
    op.factory.clear_actions()
