"""Developer and operator tooling that is not part of serving: ``idp dev ...``."""
