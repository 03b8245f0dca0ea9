"""pysaml2's service provider for one connection, built per call from the options.

The SP key and certificate reach xmlsec1 (which pysaml2 runs as a program) as files: they
are written to a fresh directory only this process's user can read, and removed when the
call ends. pysaml2 is given the IdP's metadata rewritten to hold only the trusted signing
certificates (:func:`idp.connections.saml.metadata.trusted`), and
``only_use_keys_in_metadata``: a certificate carried in the message itself is never used.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.sigver import RSACrypto
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from idp.connections.saml import credentials, schema, xmlsec
from idp.connections.saml.contract import SKEW, Sp, refused
from idp.connections.saml.metadata import NAME_ID_FORMATS, POST, REDIRECT, IdpInfo, pysaml2_metadata

XMLSEC = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
# pysaml2 logs whole documents (a bearer assertion, users' attributes) in its error texts and
# at debug level: idp logs its own reasons (UpstreamError.detail) instead
logging.getLogger("saml2").setLevel(logging.CRITICAL)


@functools.lru_cache(maxsize=64)
def _loaded(key_pem: str) -> Any:
    return serialization.load_pem_private_key(key_pem.encode(), None)


def forget(exc: BaseException) -> None:
    """Clear the locals of the frames a pysaml2 exception chain holds: pysaml2 keeps
    certificates in open temporary files in them, and its chained exceptions form reference
    cycles, so without this the files stay open until a garbage collection."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        stack += [current.__cause__, current.__context__]


def _write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return str(path)


def _build(
    options: dict[str, Any], sp: Sp, info: IdpInfo, certs: tuple[str, ...], sign: bool,
    allow_unsolicited: bool, directory: Path,
) -> Saml2Client:  # fmt: skip
    """A pysaml2 SP for this connection, its key files in ``directory``."""
    key, certificate = options.get("sp_private_key"), options.get("sp_certificate")
    keys: dict[str, Any] = {}
    key_file = None
    if isinstance(key, str) and key and isinstance(certificate, str) and certificate:
        key_file = _write(directory, "sp.key", key)
        cert_file = _write(directory, "sp.crt", credentials.pem(certificate))
        # decryption only: pysaml2 loads a signing key_file into `cryptography` on every
        # client (RSA key checks, ~90 ms for 3072 bits, twice); signing sets it below
        pairs = [{"key_file": key_file, "cert_file": cert_file}]
        old_key, old_cert = (
            options.get("sp_previous_private_key"),
            options.get("sp_previous_certificate"),
        )
        if isinstance(old_key, str) and old_key and isinstance(old_cert, str) and old_cert:
            # after a rotation, an IdP may still encrypt to the previous certificate
            # until it loads the new SP metadata
            pairs.append({
                "key_file": _write(directory, "sp-previous.key", old_key),
                "cert_file": _write(directory, "sp-previous.crt", credentials.pem(old_cert)),
            })  # fmt: skip
        keys = {"encryption_keypairs": pairs}
    elif sign:
        raise refused("bad_configuration", "samlp: sign_requests without an SP key pair",
                      "This sign-in method is not configured correctly.")  # fmt: skip
    conf = SPConfig()
    conf.load({
        "entityid": sp.entity_id,
        "xmlsec_binary": XMLSEC,
        "metadata": {"inline": [pysaml2_metadata(info, certs)]},
        "accepted_time_diff": SKEW,
        "delete_tmpfiles": True,
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(sp.acs_url, POST)],
                "single_logout_service": [(sp.slo_url, REDIRECT)],
            },
            "allow_unsolicited": allow_unsolicited,
            # pysaml2 is asked for "one of the two signed"; finish() checks which one
            # and that the assertion it uses is covered (want_* left to it would refuse
            # the common IdP that signs only the assertion, or only the response)
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "authn_requests_signed": sign,
            "only_use_keys_in_metadata": True,
            "name_id_format": list(NAME_ID_FORMATS),
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
        }},
        **keys,
    })  # fmt: skip
    saml = Saml2Client(config=conf)
    xmlsec.install(saml, XMLSEC)  # one xmlsec1 process per check, without the CA bundle
    schema.install()  # the signed elements' schema check in libxml2 (see schema.py)
    if sign and key_file is not None:
        # what security_context() would have built from key_file, with the key parsed
        # once per process (the redirect binding signs with it, xmlsec1 with the file)
        saml.sec.key_file = key_file
        saml.sec.sec_backend = RSACrypto(_loaded(str(key)))
    saml.users = _NoPopulation()  # pysaml2 would remember every user in this process
    return saml


class _NoPopulation:
    """pysaml2's SP keeps each parsed response's subject in memory (its ``users``) for
    its own logout bookkeeping, which idp does not use; a cached client would grow forever."""

    def add_information_about_person(self, session_info: Any) -> None:
        return None


@dataclass
class _Cached:
    saml: Saml2Client
    directory: Path
    built: float
    lock: threading.Lock = field(default_factory=threading.Lock)


CACHE_SECONDS = 600.0
CACHE_SIZE = 32
_CACHE: OrderedDict[str, _Cached] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _drop(entry: _Cached) -> None:
    shutil.rmtree(entry.directory, ignore_errors=True)


@atexit.register
def clear() -> None:
    """Forget every cached client and remove its key files."""
    with _CACHE_LOCK:
        for entry in _CACHE.values():
            _drop(entry)
        _CACHE.clear()


def _cache_key(*parts: Any) -> str:
    # in memory only; options hold the SP key, so only a digest is kept as the key
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@contextmanager
def client(
    options: dict[str, Any],
    sp: Sp,
    info: IdpInfo,
    certs: tuple[str, ...],
    *,
    sign: bool = False,
    allow_unsolicited: bool = False,
) -> Iterator[Saml2Client]:
    """A pysaml2 SP for this connection, built once per configuration and process (its
    metadata parsed, its key files written to a 0700 directory) and reused for
    :data:`CACHE_SECONDS`: building one per request cost a millisecond or two of every
    SAML login. One request at a time uses a client (pysaml2 keeps per-call state on it)."""
    key = _cache_key(sorted(options.items()), sp, info, certs, sign, allow_unsolicited)
    now = time.monotonic()
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and now - entry.built > CACHE_SECONDS:
            _drop(_CACHE.pop(key))
            entry = None
        if entry is not None:
            _CACHE.move_to_end(key)
    if entry is None:
        directory = Path(tempfile.mkdtemp(prefix="idp-saml-"))  # mode 0700 (mkdtemp's own)
        try:
            built = _build(options, sp, info, certs, sign, allow_unsolicited, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        entry = _Cached(built, directory, now)
        with _CACHE_LOCK:
            _CACHE[key] = entry
            while len(_CACHE) > CACHE_SIZE:
                _drop(_CACHE.popitem(last=False)[1])
    with entry.lock:
        yield entry.saml
