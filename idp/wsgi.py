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

# Log streams: this worker's delivery loop. A database lease per stream keeps each stream to
# one worker at a time; started here, in the worker (gunicorn imports this module in each
# worker; with --preload a thread started in the master would not survive the fork).
# Back-channel logouts (OIDC BCL 1.0): this worker's delivery loop, a lease per logout.
if app.config["BACKCHANNEL_LOGOUT_ENABLED"] and app.config["BACKCHANNEL_LOGOUT_DELIVERY"]:
    from idp.backchannel import delivery as backchannel_delivery

    backchannel_delivery.for_app(app).start()

if app.config["LOG_STREAM_DELIVERY"]:
    from idp.logstreams import delivery

    delivery.for_app(app).start()
