"""A server's worker imports the big optional libraries only when it uses them (issues 17-18,
a worker's memory): pysaml2 with xmlschema and elementpath (~20 MB, more once its XSD schemas
are read) on the first use of a SAML connection, zxcvbn's dictionaries (~12 MB) on the first
password that reaches the strength estimate, redis-py (~9 MB with the OpenTelemetry SDK it
imports) only with ``REDIS_URL``, py_webauthn with cbor2 and pyasn1 (~5 MB) on the first
WebAuthn ceremony.

Each check runs in a fresh interpreter (``sys.modules`` of the test process has them all): a
fresh instance without SAML connections is served over HTTP, answers a client-credentials token
and a password login with its code redeemed, and none of them was imported; then each is
imported by the use that needs it, so the first check cannot pass for a library that is simply
never loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAZY = ("saml2", "xmlschema", "elementpath", "zxcvbn", "redis", "webauthn", "cbor2", "pyasn1")

SCRIPT = """
import sys
LAZY = {lazy!r}
from pathlib import Path

import requests

from tests.conftest import build_app, serving
from tests.helpers import login_and_redeem

def loaded():
    return sorted(m for m in LAZY if m in sys.modules)

tmp = Path({tmp!r})
with serving(lambda port: build_app(tmp, port)) as live:
    client, audience = live.factory.m2m()
    token = requests.post(
        f"{{live.url}}/oauth/token", auth=client.basic,
        data={{"grant_type": "client_credentials", "audience": audience}},
    )
    assert token.status_code == 200, token.text
    web = live.factory.gen_client()
    user = live.factory.gen_user()
    assert "id_token" in login_and_redeem(live.url, web, user)
    print("served:", loaded())

    from idp.identity.policy import PasswordPolicy

    assert PasswordPolicy(8, 3).problems("kitten12") != []
    print("after a new password:", loaded())

    from idp.connections import saml

    assert all(getattr(saml, name) for name in saml.__all__)
    try:
        saml.nothing_of_that_name
    except AttributeError:
        pass
    else:
        raise AssertionError("a missing name must raise AttributeError")
    print("after SAML:", loaded())

    from idp import create_app

    create_app(dict(live.app.config, REDIS_URL="redis://127.0.0.1:9/15"), instance_path=tmp)
    print("with REDIS_URL:", loaded())

    from idp.mfa import webauthn

    options, _ = webauthn.authentication_options("127.0.0.1", None, "preferred")
    assert options["rpId"] == "127.0.0.1"
    print("after a WebAuthn ceremony:", loaded())
"""


def test_a_worker_imports_optional_libraries_only_when_it_uses_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(lazy=LAZY, tmp=str(tmp_path))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["served"] == "[]", f"imported at start or by a token or login: {lines['served']}"
    assert lines["after a new password"] == "['zxcvbn']"
    assert lines["after SAML"] == "['elementpath', 'saml2', 'xmlschema', 'zxcvbn']"
    assert lines["with REDIS_URL"] == "['elementpath', 'redis', 'saml2', 'xmlschema', 'zxcvbn']"
    assert lines["after a WebAuthn ceremony"] == str(sorted(LAZY))
