"""Every area of the console, each a module registering its pages on ``bp``."""

from __future__ import annotations

from idp.console import (  # noqa: F401 - each registers its pages on bp
    actions,
    apis,
    connections,
    flows,
    logs,
    marketplace,
    settings,
    users,
    views,
)
from idp.console.pages import bp

__all__ = ["bp"]
