"""WSGI entry point for gunicorn: ``gunicorn idp.wsgi:app`` (instance from IDP_INSTANCE)."""

from sqlalchemy.exc import SQLAlchemyError

from idp import create_app
from idp.extensions import services

app = create_app()

# Load the signing keys before the first request, so that it is not the one paying for
# parsing them; a database that is down now is retried on the first request.
with app.app_context():
    try:
        services().keys.refresh(force=True)
    except SQLAlchemyError:
        app.logger.warning("signing keys not loaded at start-up; the database is unavailable")
    # Say at start-up whether Actions can run here, and why not (ARCHITECTURE.md §11).
    services().actions.runner.ensure_probed()
    services().geoip.warn_if_unset()  # here, not in create_app: CLI output stays clean
