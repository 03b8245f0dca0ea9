"""Operating idp: Prometheus metrics, structured logs, graceful shutdown under gunicorn."""
