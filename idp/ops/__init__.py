"""Operating idp: Prometheus metrics, structured logs, graceful shutdown (gunicorn, granian)."""
