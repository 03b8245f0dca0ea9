"""A second SAML identity provider product for interop: npm ``samlify``'s IdP side, run by
``tests/connections/second_idp.mjs`` on a free loopback port with a key pair made here.

    def test_x(second_idp):
        second_idp.metadata_url, second_idp.fingerprint     # what idp's operator configures
        second_idp.register_sp(sp_metadata_xml, encrypt=True)  # the IdP's administrator
        fields = second_idp.login(url_or_form, "alice")     # its SSO, its login form: the
                                                            # answer page's form fields
        second_idp.requests()                               # the AuthnRequests it accepted

Options of ``register_sp`` are samlify's own: ``sign_response`` (the SP entity's
``wantMessageSigned``: the Response signed as well as the assertion), ``encrypt`` (the IdP's
``isAssertionEncrypted``, to the certificate of the SP's metadata), ``signed_requests`` (the
IdP's ``wantAuthnRequestsSigned``: samlify refuses an AuthnRequest without a valid signature
by the certificate of the SP's metadata).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.connections.saml import credentials, metadata
from tests.connections.saml_idp import _page_forms

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("second_idp.mjs")
PACKAGE = ROOT / "node_modules" / "samlify" / "package.json"
NODE = shutil.which("node")


class SecondIdpError(AssertionError):
    """The second IdP's pages did not go as a login should."""


@dataclass
class SecondIdp:
    base: str
    certificate: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signing certificate's DER, lowercase hex (what the operator
        confirms; computed here with hashlib, not with idp's code)."""
        body = "".join(line for line in self.certificate.splitlines() if "-----" not in line)
        return hashlib.sha256(base64.b64decode(body)).hexdigest()

    def register_sp(self, metadata_xml: str, **options: bool) -> None:
        params = {k: "1" for k, v in options.items() if v}
        resp = requests.post(
            f"{self.base}/admin/sp", params=params, data=metadata_xml.encode(), timeout=10
        )
        assert resp.status_code == 204, resp.text[:300]

    def requests(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.base}/requests", timeout=10).json())

    def login(
        self, url: str, username: str, form: dict[str, str] | None = None
    ) -> tuple[str, dict[str, str]]:
        """The SSO endpoint (a redirect URL, or ``form`` posted to ``url``), the login form:
        the answer page's form, its action (the ACS) and fields, not posted."""
        browser = requests.Session()
        page = (
            browser.post(url, data=form, timeout=10)
            if form is not None
            else browser.get(url, timeout=10)
        )
        if page.status_code != 200:
            raise SecondIdpError(f"SSO: HTTP {page.status_code}: {page.text[:300]}")
        action, fields = _page_forms(page.text)[0]
        fields["username"] = username
        answer = browser.post(self.base + action, data=fields, timeout=30)
        if answer.status_code != 200:
            raise SecondIdpError(f"login: HTTP {answer.status_code}: {answer.text[:300]}")
        forms = _page_forms(answer.text)
        if not forms or "SAMLResponse" not in forms[0][1]:
            raise SecondIdpError("the answer page has no SAMLResponse form")
        return forms[0]


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
            if b"\n" in buffer:
                return dict(json.loads(buffer.split(b"\n", 1)[0]))
        elif process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"the second IdP did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def second_idp() -> Iterator[SecondIdp]:
    if NODE is None or not PACKAGE.exists():
        pytest.skip("node or npm samlify is missing (run `npm ci`)")
    key, cert = credentials.new_sp_credentials("second-idp")  # any RSA pair and certificate
    with tempfile.TemporaryDirectory(prefix="second-idp-") as tmp:
        path = Path(tmp)
        (path / "idp.key").write_text(key)
        (path / "idp.crt").write_text(cert)
        log = path / "second-idp.log"
        args = [str(NODE), str(SCRIPT), "--key", str(path / "idp.key"),
                "--cert", str(path / "idp.crt")]  # fmt: skip
        with log.open("wb") as err:
            process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
            try:
                ready = _wait_ready(process, log)
                yield SecondIdp(base=ready["base"], certificate=cert, process=process)
            finally:
                metadata.clear()  # idp's cache of IdP metadata: a later module may get the port
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()
