"""pysaml2's xmlsec1 backend, run the way idp needs it, and cheaper.

pysaml2 starts ``xmlsec1 --version`` before every signature check (twice: for
``--lax-key-search`` and for reading the output) and ``xmlsec1`` itself reads the system's
bundle of trusted CA certificates at every start, which idp never uses (it hands xmlsec1 the
pinned IdP certificate as the key: no chain is built). Measured by bench/saml.py: three
processes and ~26 ms per response before, one process and ~5 ms after. The version is asked
once per binary and process; the CA bundle is hidden from these processes only (never through
``os.environ``, which would change TLS for the rest of idp).
"""

from __future__ import annotations

import functools
import os
from subprocess import PIPE, Popen
from tempfile import NamedTemporaryFile
from typing import Any

from saml2.sigver import CryptoBackendXmlSec1, XmlsecError

# xmlsec1's environment: only what it needs; no CA bundle (see above), no locale surprises
_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "LANG": "C",
    "SSL_CERT_FILE": os.devnull,
    "SSL_CERT_DIR": os.devnull,
}


@functools.lru_cache(maxsize=4)
def _version(binary: str) -> str:
    out, _ = Popen([binary, "--version"], stdout=PIPE, stderr=PIPE, env=_ENV).communicate()  # noqa: S603
    parts = out.decode("ascii", "replace").split(" ")
    return parts[1] if len(parts) > 1 else "0.0.0"


class XmlSec1(CryptoBackendXmlSec1):
    """:class:`saml2.sigver.CryptoBackendXmlSec1` with its version cached and its processes
    run with :data:`_ENV`; everything else (the commands, the checks of their output) is
    pysaml2's."""

    @property
    def version(self) -> str:
        return _version(self.xmlsec)

    def _run_xmlsec(self, com_list: list[str], extra_args: list[str]) -> tuple[str, str, bytes]:
        # pysaml2 7.5's own body, with env= (it passes none)
        with NamedTemporaryFile(suffix=".xml") as ntf:
            com_list.extend(["--output", ntf.name])
            if self.version_nums >= (1, 3):
                com_list.extend(["--lax-key-search"])
            com_list += extra_args
            pof = Popen(com_list, stderr=PIPE, stdout=PIPE, env=_ENV)  # noqa: S603
            p_out, p_err = (part.decode() for part in pof.communicate())
            if pof.returncode != 0:
                # pysaml2 puts the output in its message; idp never shows or logs it
                raise XmlsecError(f"returncode={pof.returncode}")
            ntf.seek(0)
            return p_out, p_err, ntf.read()


def install(saml: Any, binary: str) -> None:
    """Give a pysaml2 client (or server) this backend."""
    saml.sec.crypto = XmlSec1(binary, delete_tmpfiles=True)
