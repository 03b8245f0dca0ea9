"""A software WebAuthn authenticator for service-level tests (TESTING-REAL-PARTS.md §3.1).

It answers options the way a browser does (base64url JSON, fmt "none", ES256), with a sign
counter the test can move backwards; never use it outside tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self, uv: bool = True, user_handle: bytes | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cred_id = os.urandom(32)
        self.count = 0
        self.uv = uv
        self.user_handle = user_handle

    def _flags(self, attested: bool) -> int:
        return 0x01 | (0x04 if self.uv else 0) | (0x40 if attested else 0)

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin}).encode()

    def create(self, opts: dict[str, Any], origin: str, rp_id: str | None = None) -> str:
        n = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
        )
        rp_hash = hashlib.sha256((rp_id or opts["rp"]["id"]).encode()).digest()
        auth_data = (
            rp_hash + bytes([self._flags(True)]) + struct.pack(">I", self.count) + bytes(16)
            + struct.pack(">H", len(self.cred_id)) + self.cred_id + cose
        )  # fmt: skip
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        cdj = self._client_data("webauthn.create", opts["challenge"], origin)
        return json.dumps({
            "id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
            "response": {"clientDataJSON": b64u(cdj), "attestationObject": b64u(att),
                         "transports": ["usb"]},
        })  # fmt: skip

    def get(self, opts: dict[str, Any], origin: str, rp_id: str | None = None) -> str:
        self.count += 1
        rp_hash = hashlib.sha256((rp_id or opts["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(False)]) + struct.pack(">I", self.count)
        cdj = self._client_data("webauthn.get", opts["challenge"], origin)
        sig = self.key.sign(auth_data + hashlib.sha256(cdj).digest(), ec.ECDSA(hashes.SHA256()))
        handle = b64u(self.user_handle) if self.user_handle else None
        return json.dumps({
            "id": b64u(self.cred_id), "rawId": b64u(self.cred_id), "type": "public-key",
            "response": {"clientDataJSON": b64u(cdj), "authenticatorData": b64u(auth_data),
                         "signature": b64u(sig), "userHandle": handle},
        })  # fmt: skip
