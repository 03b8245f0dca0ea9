"""Secrets at rest (S-CA-02): keyed digests and authenticated encryption."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import InvalidToken

from idp.core.crypto import SecretBox, random_identifier, random_token


def test_digest_is_keyed_and_verifies():
    a, b = SecretBox("a" * 40), SecretBox("b" * 40)
    secret = random_token(32)
    assert a.verify(secret, a.digest(secret))
    assert not a.verify(secret + "x", a.digest(secret))
    assert a.digest(secret) != b.digest(secret)  # a stolen table is useless without the key
    assert secret not in a.digest(secret)


def test_encryption_round_trip_and_tamper_detection():
    box = SecretBox("k" * 40)
    sealed = box.encrypt(b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE" not in sealed
    assert box.decrypt(sealed) == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(InvalidToken):
        SecretBox("z" * 40).decrypt(sealed)


def test_short_instance_secret_refused():
    with pytest.raises(ValueError, match="at least 32"):
        SecretBox("short")


def test_random_tokens_are_long_and_distinct():
    tokens = {random_token(32) for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) >= 43 for t in tokens)  # 256 bits, base64url


def test_random_identifiers_are_letters_and_digits_only():
    ids = {random_identifier() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", i) for i in ids)
