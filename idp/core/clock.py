"""Injectable clock: tests move time instead of sleeping."""

from __future__ import annotations

import time

_offset = 0.0


def now() -> int:
    """Current Unix time in whole seconds (JWT NumericDate, RFC 7519 §2)."""
    return int(time.time() + _offset)


def advance(seconds: float) -> None:
    """Test hook: move this process's clock forward."""
    global _offset  # noqa: PLW0603 - a process-wide test clock is the point
    _offset += seconds


def reset() -> None:
    """Test hook: back to real time."""
    global _offset  # noqa: PLW0603
    _offset = 0.0
