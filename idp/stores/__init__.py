"""Storage behind contracts for the login's hot path.

``STORES`` is how domain code reaches the stores: ``STORES.codes.claim(session, ...)``. Its
fields are typed by the contracts of ``idp.stores.contracts``, so mypy checks callers against
the promise, not against one implementation; today every store is ``idp.stores.sql``'s. It is
a module-level registry rather than a per-app service because the stores hold no state (each
method is given the session it runs in) and because the modules that use it are imported by
``idp.extensions`` itself.
"""

from __future__ import annotations

from idp.stores.contracts import Stores
from idp.stores.sql import sql_stores

STORES: Stores = sql_stores()

__all__ = ["STORES", "Stores"]
