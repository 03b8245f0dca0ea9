"""Ceiling: RS256 signatures per second on one core with ``cryptography``.

An access token costs at least one RSA-2048 PKCS#1 v1.5 SHA-256 signature, so no token endpoint
on this machine can beat ``sign/s per core x cores``. Measured in one process, one thread, over a
~300-byte JWT signing input (base64url header '.' base64url payload).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signing_input() -> bytes:
    """A realistic RFC 9068 access-token signing input (about 300 bytes)."""
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    now = int(time.time())
    payload = {
        "iss": "http://127.0.0.1:5000",
        "sub": "cl_3f9a1c2e7b",
        "aud": "https://api.bench.test",
        "client_id": "cl_3f9a1c2e7b",
        "iat": now,
        "exp": now + 3600,
        "jti": "Zx8r4S3oQ2mW0c1v",
        "scope": "read:things",
    }
    parts = (json.dumps(part, separators=(",", ":")).encode() for part in (header, payload))
    return b".".join(_b64url(p) for p in parts)


def measure(key: RSAPrivateKey, data: bytes, seconds: float) -> tuple[int, float]:
    """Sign ``data`` repeatedly for ``seconds``; return (count, elapsed)."""
    pad, algo = padding.PKCS1v15(), hashes.SHA256()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            key.sign(data, pad, algo)
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count, now - start


def signs_per_second(seconds: float = 3.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = signing_input()
    measure(key, data, 0.2)  # warm-up
    count, elapsed = measure(key, data, seconds)
    return count / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(f"signing input: {len(signing_input())} bytes")
    print(f"RS256 signatures/s per core: {signs_per_second(args.seconds):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
