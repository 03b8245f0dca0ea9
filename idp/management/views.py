"""The management API's blueprint with every resource's routes registered on it."""

from __future__ import annotations

from idp.management import actions, bindings, logs
from idp.management.base import bp

__all__ = ["actions", "bindings", "bp", "logs"]
