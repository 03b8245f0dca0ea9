"""WSGI entry point for gunicorn: ``gunicorn idp.wsgi:app`` (instance from IDP_INSTANCE)."""

from idp import create_app

app = create_app()
