"""Password policy: a minimum length, an offline strength estimate (zxcvbn, whose dictionaries
include the common-password lists), and a deny list of words tied to this service.

zxcvbn's dictionaries are ~12 MB a process: imported by the first password that reaches the
estimate, not when the server starts (issue 17; tests/operations/test_lazy_imports.py)."""

from __future__ import annotations

from dataclasses import dataclass

DENY = {"password", "passw0rd", "letmein", "qwerty", "idp", "admin", "welcome", "changeme"}


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    min_score: int

    def problems(self, password: str, email: str = "") -> list[str]:
        """User-facing reasons the password is refused (empty: acceptable)."""
        out = []
        if len(password) < self.min_length:
            out.append(f"Use at least {self.min_length} characters.")
        if len(password) > 1024:
            out.append("Use at most 1024 characters.")
        lowered = password.lower()
        if lowered in DENY or (email and lowered == email.lower()):
            out.append("This password is too common.")
        if not out and self.min_score:
            from zxcvbn import zxcvbn

            inputs = [p for p in email.replace("@", " ").replace(".", " ").split() if p]
            if zxcvbn(password[:100], user_inputs=inputs)["score"] < self.min_score:
                out.append("This password is too easy to guess; add words or characters.")
        return out
