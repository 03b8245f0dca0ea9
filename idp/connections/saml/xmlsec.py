"""pysaml2's xmlsec1 backend, run the way idp needs it, and cheaper.

Signature checks (one per signed element of each SAMLResponse: the busy path) run in this
process through python-xmlsec, the binding of the same libxmlsec1 the ``xmlsec1`` program is
built on, when it is installed: the program costs a process, a temporary file and OpenSSL's
start-up per check (~5 ms here, bench/saml.py). :func:`_verify` gives libxmlsec1 exactly what
pysaml2's command line gives the program (``--verify --enabled-reference-uris empty,same-doc
--enabled-key-data raw-x509-cert --pubkey-cert-pem CERT --id-attr:ID NODE --node-id ID``): the
same start node, the same ``<ds:Signature>`` found from it, the pinned certificate as the only
key, references within the document only; and it enables only the transforms SAML's XML
signature profile (Core §5.4.3-4) and pysaml2's own pre-checks allow. idp computes no digest
and no signature itself: libxmlsec1 does, as before. Decryption (rare) and XML signing (only
the POST binding's AuthnRequest) keep pysaml2's program runs.

Those runs: pysaml2 starts ``xmlsec1 --version`` before every run (twice: for
``--lax-key-search`` and for reading the output) and ``xmlsec1`` reads the system's bundle of
trusted CA certificates at every start, which idp never uses (it hands xmlsec1 the pinned IdP
certificate as the key: no chain is built). The version is asked once per binary and process;
the CA bundle is hidden from these processes only (never through ``os.environ``, which would
change TLS for the rest of idp).
"""

from __future__ import annotations

import functools
import os
from subprocess import PIPE, Popen
from tempfile import NamedTemporaryFile
from typing import Any

from lxml import etree
from saml2.sigver import CryptoBackendXmlSec1, XmlsecError

libxmlsec: Any
try:  # python-xmlsec (a dependency); without it every check runs the xmlsec1 program
    import xmlsec as libxmlsec
except Exception:  # noqa: BLE001 - also its libxml2 not lxml's: refused at import, fall back
    libxmlsec = None

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


# Core §5.4.3-4 and pysaml2's pre-checks (saml2.xmldsig.ALLOWED_*): exclusive c14n, the
# enveloped-signature transform, and the digest and signature methods libxmlsec1 knows that an
# IdP signs with (idp.connections.saml.checks refuses SHA-1 afterwards unless allowed)
_REFERENCE = (
    "TransformEnveloped", "TransformExclC14N", "TransformExclC14NWithComments",
    "TransformSha1", "TransformSha224", "TransformSha256", "TransformSha384", "TransformSha512",
)  # fmt: skip
_SIGNATURE = (
    "TransformExclC14N", "TransformExclC14NWithComments",
    "TransformRsaSha1", "TransformRsaSha224", "TransformRsaSha256", "TransformRsaSha384",
    "TransformRsaSha512", "TransformEcdsaSha1", "TransformEcdsaSha224", "TransformEcdsaSha256",
    "TransformEcdsaSha384", "TransformEcdsaSha512", "TransformDsaSha1",
)  # fmt: skip
_DS = "http://www.w3.org/2000/09/xmldsig#"
# the document was parsed before (xmlsafe: no DTD at all); this parser reads no DTD either
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)


def _verify(signed: bytes, cert_file: str, cert_type: str, node_name: str, node_id: str) -> bool:
    """pysaml2's ``xmlsec1 --verify`` command (see the module's docstring), in this process.
    True when the signature verifies; raises :class:`XmlsecError` (pysaml2 then tries its
    next trusted certificate) when it does not, as the program's exit status would."""
    assert libxmlsec is not None
    namespace, _, local = node_name.rpartition(":")
    try:
        root = etree.fromstring(signed, _PARSER)
        ctx = libxmlsec.SignatureContext()
        start = root if not node_id else None
        # --id-attr:ID NODE: the ID attribute of NODE elements only (duplicates refused)
        for element in root.iter(f"{{{namespace}}}{local}"):
            if element.get("ID") is not None:
                ctx.register_id(element, "ID")
                if node_id and element.get("ID") == node_id:
                    start = element
        if start is None:  # --node-id names no such element: the program fails
            raise XmlsecError("no node with this ID")
        # the program's start: the node itself when it is a Signature, else the first
        # Signature below it in document order (xmlSecFindNode)
        signature = libxmlsec.tree.find_node(start, libxmlsec.constants.NodeSignature, _DS)
        if signature is None:
            raise XmlsecError("no signature")
        # --enabled-reference-uris empty,same-doc (python-xmlsec does not expose the switch)
        for reference in signature.iter(f"{{{_DS}}}Reference"):
            if (reference.get("URI") or "#")[:1] != "#":
                raise XmlsecError("a reference outside the document")
        for name in _REFERENCE:
            ctx.enable_reference_transform(getattr(libxmlsec.constants, name))
        for name in _SIGNATURE:
            ctx.enable_signature_transform(getattr(libxmlsec.constants, name))
        ctx.set_enabled_key_data([libxmlsec.constants.KeyDataRawX509Cert])
        fmt = libxmlsec.constants.KeyDataFormatCertDer if cert_type == "der" else (
            libxmlsec.constants.KeyDataFormatCertPem)  # fmt: skip
        ctx.key = libxmlsec.Key.from_file(cert_file, fmt)  # a preset key: KeyInfo is ignored
        ctx.verify(signature)
    except (libxmlsec.Error, etree.LxmlError, ValueError) as exc:
        raise XmlsecError(type(exc).__name__) from None
    return True


class XmlSec1(CryptoBackendXmlSec1):
    """:class:`saml2.sigver.CryptoBackendXmlSec1` with its signature checks in process
    (:func:`_verify`) when python-xmlsec is installed, its version cached and its processes
    run with :data:`_ENV`; everything else (the commands, the checks of their output) is
    pysaml2's."""

    def validate_signature(
        self, signedtext: str | bytes, cert_file: str, cert_type: str, node_name: str,
        node_id: str,
    ) -> bool:  # fmt: skip
        if libxmlsec is None:
            return bool(super().validate_signature(signedtext, cert_file, cert_type, node_name,
                                                   node_id))  # fmt: skip
        raw = signedtext if isinstance(signedtext, bytes) else signedtext.encode("utf-8")
        return _verify(raw, cert_file, cert_type, node_name, node_id)

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
